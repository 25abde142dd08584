"""The pure core: origins, rules, namespaces and limits, in plain Python with no Django."""
