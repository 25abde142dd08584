"""What the guard reports: metrics, the decision log, the refusal log and rule activity."""
