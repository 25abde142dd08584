"""Named header values that must be refused, and look-alikes that must pass.

The regression corpus for the origin guard: every entry in ``ATTACKS`` is an
``Origin`` (or, where ``header`` says so, a ``Referer``) value that
``whitelist.rules.decision.decide_headers`` must refuse against ``RULES``; every entry in
``ALLOWED`` must be allowed, so that the corpus also proves the guard is not
simply refusing everything. Names are the pytest ids: keep them short and unique.

Semantics followed (``whitelist/core/origins.py`` and docs/how-it-works.md "The decision"/"Rules"):

* Header values are parsed strictly and never repaired: white space, control
  characters, backslashes, commas, userinfo, non-ASCII hosts, percent-encoding,
  non-canonical IPv4 forms, zero-padded or out-of-range ports are refused.
* Only scheme and host case and the default port are normalised, so those
  variants are in ``ALLOWED``.
* ``*.example.org`` matches subdomains at any depth, never ``example.org`` itself.
* A trailing dot (``https://example.com.``) is refused: the parser requires every
  label to be non-empty, although DNS treats the fully-qualified name as equal.
* Referer userinfo (``https://evil.com@example.com/``) is refused like an Origin one.
* IPv6 hosts are compressed before comparison, unlike IPv4, whose non-canonical
  forms are refused: ``http://[0:0:0:0:0:0:0:1]:8000`` and ``http://[::0.0.0.1]:8000``
  pass a rule for ``http://[::1]:8000``. They are the same address, so they are in
  ``ALLOWED``; should client IPv6 be held to "canonical or refused" as well, they
  move to ``ATTACKS``.

Invisible and look-alike characters are written as escapes so that a reviewer
can see them. The corpus is data only; the tests live in
``tests/test_origin_properties.py``.
"""

from __future__ import annotations

from typing import NamedTuple

ORIGIN = "origin"
REFERER = "referer"

RULES = (
    "https://example.com",
    "https://*.example.com",
    "http://localhost:5000",
    # A wildcard without its apex rule: example.org itself must stay refused.
    "https://*.example.org",
    # Typed in Unicode by staff, stored as punycode; browsers send the punycode.
    "https://b\u00fccher.example",
    "http://127.0.0.1:8000",
    "http://[::1]:8000",
)


class Case(NamedTuple):
    """One header value; ``header`` is ``"origin"`` or ``"referer"``."""

    name: str
    value: str
    header: str = ORIGIN


ATTACKS = (
    # Suffix glue: the allowed host followed by more labels or text.
    Case("suffix-dot-evil", "https://example.com.evil.com"),
    Case("suffix-dot-evil-port", "https://example.com.evil.com:443"),
    Case("suffix-sub-dot-evil", "https://sub.example.com.evil.com"),
    Case("suffix-letters", "https://example.community"),
    Case("suffix-hyphen", "https://example.com-evil.com"),
    Case("suffix-underscore", "https://example.com_evil.com"),
    Case("suffix-shorter-tld", "https://example.co"),
    Case("suffix-wildcard-base", "https://example.org.evil.com"),
    Case("suffix-wildcard-sub", "https://a.example.org.evil.com"),
    Case("suffix-localhost", "http://localhost.evil.com:5000"),
    Case("suffix-idn", "https://xn--bcher-kva.example.evil.com"),
    Case("suffix-referer", "https://example.com.evil.com/", REFERER),
    # Prefix glue: text before the allowed host without a dot.
    Case("prefix-evil", "https://evilexample.com"),
    Case("prefix-not", "https://notexample.com"),
    Case("prefix-hyphen", "https://evil-example.com"),
    Case("prefix-underscore", "https://evil_example.com"),
    Case("prefix-dotted-evil", "https://evil.comexample.com"),
    Case("prefix-wildcard-base", "https://evilexample.org"),
    Case("prefix-localhost", "http://evillocalhost:5000"),
    Case("prefix-referer", "https://notexample.com/", REFERER),
    # Userinfo: never part of an origin; refused in both headers.
    Case("userinfo-allowed-then-evil", "https://example.com@evil.com"),
    Case("userinfo-evil-then-allowed", "https://evil.com@example.com"),
    Case("userinfo-user", "https://user@example.com"),
    Case("userinfo-user-pass", "https://user:pass@example.com"),
    Case("userinfo-empty", "https://@example.com"),
    Case("userinfo-colon-only", "https://:@example.com"),
    Case("userinfo-port-then-evil", "https://example.com:443@evil.com"),
    Case("userinfo-localhost", "http://localhost:5000@evil.com"),
    Case("userinfo-ip", "http://127.0.0.1:8000@evil.com"),
    Case("userinfo-referer-evil-host", "https://example.com@evil.com/", REFERER),
    Case("userinfo-referer-allowed-host", "https://evil.com@example.com/", REFERER),
    # Opaque, empty and wildcard values.
    Case("null", "null"),
    Case("null-upper", "NULL"),
    Case("null-title", "Null"),
    Case("null-padded", "null "),
    Case("empty", ""),
    Case("empty-referer", "", REFERER),
    Case("null-referer", "null", REFERER),
    Case("star", "*"),
    Case("scheme-only", "https://"),
    Case("port-only", "https://:443"),
    Case("wildcard-header", "https://*.example.com"),
    Case("wildcard-star-host", "https://*"),
    Case("port-star", "https://example.com:*"),
    # Confusables and invisible characters: browsers send hosts as ASCII only.
    Case("cyrillic-a", "https://ex\u0430mple.com"),
    Case("cyrillic-e-first", "https://\u0435xample.com"),
    Case("cyrillic-o-tld", "https://example.c\u043em"),
    Case("greek-omicron-tld", "https://example.c\u03bfm"),
    Case("cyrillic-palochka-l", "https://examp\u04cfe.com"),
    Case("kelvin-sign", "https://\u212a.example.com"),
    Case("dotted-capital-i", "https://\u0130.example.com"),
    Case("fullwidth-dot", "https://example\uff0ecom"),
    Case("ideographic-full-stop", "https://example\u3002com"),
    Case("halfwidth-ideographic-stop", "https://example\uff61com"),
    Case("fullwidth-letters", "https://\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com"),
    Case("fullwidth-colon-port", "https://example.com\uff1a443"),
    Case("fullwidth-digit-port", "http://localhost:\uff15000"),
    Case("zero-width-space", "https://exam\u200bple.com"),
    Case("zero-width-joiner", "https://exam\u200dple.com"),
    Case("zero-width-non-joiner", "https://exam\u200cple.com"),
    Case("word-joiner", "https://example.com\u2060"),
    Case("byte-order-mark", "\ufeffhttps://example.com"),
    Case("soft-hyphen", "https://exam\u00adple.com"),
    Case("soft-hyphen-end", "https://example.com\u00ad"),
    Case("combining-mark", "https://example.com\u0307"),
    Case("ascii-capital-i-for-l", "https://exampIe.com"),
    Case("ascii-one-for-l", "https://examp1e.com"),
    Case("ascii-rn-for-m", "https://exarnple.com"),
    Case("unicode-idn-host", "https://b\u00fccher.example"),
    Case("unicode-idn-host-upper", "https://B\u00dcCHER.example"),
    Case("cyrillic-referer", "https://ex\u0430mple.com/", REFERER),
    Case("zero-width-referer", "https://exam\u200bple.com/", REFERER),
    # Punycode of other names that look like the allowed ones.
    Case("punycode-cyrillic-a", "https://xn--exmple-4nf.com"),
    Case("punycode-cyrillic-e", "https://xn--xample-2of.com"),
    Case("punycode-cyrillic-e-last", "https://xn--exampl-8of.com"),
    Case("punycode-cyrillic-tld", "https://example.xn--cm-fmc"),
    Case("punycode-palochka", "https://xn--exampe-0kg.com"),
    Case("punycode-decomposed-umlaut", "https://xn--bucher-xyd.example"),
    Case("punycode-other-idn", "https://xn--bchers-3ya.example"),
    Case("punycode-cyrillic-idn", "https://xn--cher-zra540c.example"),
    Case("punycode-bogus-label", "https://xn--example.com"),
    Case("punycode-referer", "https://xn--exmple-4nf.com/login", REFERER),
    # Percent-encoding: never decoded in a host.
    Case("percent-first-letter", "https://%65xample.com"),
    Case("percent-dot", "https://example%2ecom"),
    Case("percent-dot-upper", "https://example%2Ecom"),
    Case("percent-at-allowed-first", "https://example.com%40evil.com"),
    Case("percent-at-evil-first", "https://evil.com%40example.com"),
    Case("percent-star", "https://%2A.example.com"),
    Case("percent-slash", "https://example.com%2F"),
    Case("percent-nul", "https://example.com%00"),
    Case("percent-colon-port", "https://example.com%3A443"),
    Case("percent-port-digits", "https://example.com:%34%34%33"),
    Case("percent-referer", "https://ex%61mple.com/", REFERER),
    # Ports: wrong, default of the other scheme, or not canonical.
    Case("port-other", "https://example.com:8443"),
    Case("port-next", "https://example.com:444"),
    Case("port-http-default-on-https", "https://example.com:80"),
    Case("port-https-default-on-http", "http://example.com:443"),
    Case("port-zero", "https://example.com:0"),
    Case("port-too-big", "https://example.com:65536"),
    Case("port-wraps-16-bit", "https://example.com:65979"),
    Case("port-wraps-32-bit", "https://example.com:4294967739"),
    Case("port-negative", "https://example.com:-443"),
    Case("port-plus", "https://example.com:+443"),
    Case("port-zero-padded", "https://example.com:0443"),
    Case("port-long-zero-padding", "https://example.com:" + "0" * 100 + "443"),
    Case("port-empty", "https://example.com:"),
    Case("port-doubled", "https://example.com:443:443"),
    Case("port-hex", "https://example.com:0x1bb"),
    Case("port-trailing-dot", "https://example.com:443."),
    Case("localhost-port-other", "http://localhost:5001"),
    Case("localhost-port-default", "http://localhost"),
    Case("localhost-port-zero-padded", "http://localhost:05000"),
    Case("localhost-port-extra-digit", "http://localhost:50000"),
    Case("idn-port-other", "https://xn--bcher-kva.example:8443"),
    # Schemes: only http and https origins exist here; no downgrade or upgrade.
    Case("scheme-downgrade", "http://example.com"),
    Case("scheme-upgrade-localhost", "https://localhost:5000"),
    Case("scheme-downgrade-idn", "http://xn--bcher-kva.example"),
    Case("scheme-ws", "ws://example.com"),
    Case("scheme-wss", "wss://example.com"),
    Case("scheme-ftp", "ftp://example.com"),
    Case("scheme-file-host", "file://example.com"),
    Case("scheme-file-path", "file:///etc/passwd"),
    Case("scheme-javascript", "javascript://example.com/%0aalert(1)"),
    Case("scheme-data", "data:text/html,https://example.com"),
    Case("scheme-blob", "blob:https://example.com"),
    Case("scheme-blob-uuid", "blob:https://example.com/2c5c4fd0-1b2a"),
    Case("scheme-view-source", "view-source:https://example.com"),
    Case("scheme-extension", "chrome-extension://example.com"),
    Case("scheme-typo", "httpss://example.com"),
    Case("scheme-no-slashes", "https:example.com"),
    Case("scheme-one-slash", "https:/example.com"),
    Case("scheme-three-slashes", "https:///example.com"),
    Case("scheme-relative", "//example.com"),
    Case("scheme-missing", "example.com"),
    Case("scheme-no-colon", "https//example.com"),
    Case("scheme-space", "https ://example.com"),
    Case("scheme-doubled", "https://https://example.com"),
    Case("scheme-javascript-referer", "javascript:alert(1)//https://example.com/", REFERER),
    Case("scheme-data-referer", "data:text/html,https://example.com/", REFERER),
    # Path, query or fragment: an Origin header has none.
    Case("origin-slash", "https://example.com/"),
    Case("origin-path", "https://example.com/path"),
    Case("origin-dot-dot", "https://example.com/.."),
    Case("origin-query", "https://example.com?x=1"),
    Case("origin-fragment", "https://example.com#frag"),
    Case("origin-semicolon", "https://example.com;x"),
    Case("origin-query-at", "https://example.com?@evil.com"),
    Case("fragment-at-allowed", "https://evil.com#@example.com"),
    Case("referer-fragment-at-allowed", "https://evil.com#@example.com", REFERER),
    Case("referer-allowed-in-path", "https://evil.com/https://example.com", REFERER),
    Case("referer-allowed-in-query", "https://evil.com?https://example.com", REFERER),
    Case("referer-dot-path", "https://evil.com/.example.com", REFERER),
    # Wildcards: *.example.org is subdomains only, same scheme and port.
    Case("wildcard-apex", "https://example.org"),
    Case("wildcard-apex-port", "https://example.org:443/", REFERER),
    Case("wildcard-empty-label", "https://.example.org"),
    Case("wildcard-two-dots", "https://..example.org"),
    Case("wildcard-inner-empty-label", "https://a..example.org"),
    Case("wildcard-hyphen-label", "https://-.example.org"),
    Case("wildcard-label-ends-hyphen", "https://a-.example.org"),
    Case("wildcard-scheme", "http://a.example.org"),
    Case("wildcard-port", "https://a.example.org:8443"),
    Case("wildcard-literal-star", "https://*.example.org"),
    # Trailing dots: refused, although DNS would resolve the same name.
    Case("trailing-dot", "https://example.com."),
    Case("trailing-dots", "https://example.com.."),
    Case("trailing-dot-port", "https://example.com.:443"),
    Case("trailing-dot-sub", "https://sub.example.com."),
    Case("trailing-dot-wildcard", "https://a.example.org."),
    Case("trailing-dot-localhost", "http://localhost.:5000"),
    Case("trailing-dot-ip", "http://127.0.0.1.:8000"),
    Case("trailing-dot-referer", "https://example.com./", REFERER),
    Case("leading-dot", "https://.example.com"),
    # IPv4 in the forms a URL parser would turn into 127.0.0.1: not canonical.
    Case("ipv4-decimal", "http://2130706433:8000"),
    Case("ipv4-hex-integer", "http://0x7f000001:8000"),
    Case("ipv4-hex-octet", "http://0x7f.0.0.1:8000"),
    Case("ipv4-octal", "http://0177.0.0.1:8000"),
    Case("ipv4-short-two", "http://127.1:8000"),
    Case("ipv4-short-three", "http://127.0.1:8000"),
    Case("ipv4-zero-padded", "http://127.000.000.001:8000"),
    Case("ipv4-zero-padded-last", "http://127.0.0.01:8000"),
    Case("ipv4-out-of-range", "http://256.0.0.1:8000"),
    Case("ipv4-zero", "http://0:8000"),
    Case("ipv4-unspecified", "http://0.0.0.0:8000"),
    Case("ipv4-other", "http://127.0.0.2:8000"),
    Case("ipv4-wrong-port", "http://127.0.0.1:5000"),
    Case("ipv4-as-localhost", "http://localhost:8000"),
    Case("ipv4-octal-referer", "http://0177.0.0.1:8000/", REFERER),
    # IPv6: other addresses, mapped IPv4, zones and broken brackets.
    Case("ipv6-for-localhost", "http://[::1]:5000"),
    Case("ipv6-default-port", "http://[::1]"),
    Case("ipv6-other", "http://[::2]:8000"),
    Case("ipv6-mapped-ipv4", "http://[::ffff:127.0.0.1]:8000"),
    Case("ipv6-mapped-hex", "http://[::ffff:7f00:1]:8000"),
    Case("ipv6-compat-ipv4", "http://[::127.0.0.1]:8000"),
    Case("ipv6-zone", "http://[::1%25eth0]:8000"),
    Case("ipv6-zone-raw", "http://[::1%eth0]:8000"),
    Case("ipv6-unbracketed", "http://::1:8000"),
    Case("ipv6-unclosed", "http://[::1:8000"),
    Case("ipv6-extra-bracket", "http://[::1]]:8000"),
    Case("ipv6-double-brackets", "http://[[::1]]:8000"),
    Case("ipv6-future", "http://[v1.fe]:8000"),
    Case("ipv6-bracketed-name", "http://[example.com]"),
    # Overlong input and DNS limits.
    Case("header-over-4096", "https://" + "a" * 4100 + ".example.com"),
    Case("referer-over-4096", "https://example.com/" + "a" * 4100, REFERER),
    Case("label-64", "https://" + "a" * 64 + ".example.com"),
    Case("label-64-referer", "https://" + "a" * 64 + ".example.com/", REFERER),
    Case("host-267", "https://" + ("a" * 63 + ".") * 4 + "example.com"),
    Case("host-many-labels", "https://" + "a." * 130 + "example.com"),
    Case("host-huge-label", "https://" + "a" * 300 + ".example.com"),
    # Backslashes: some URL parsers read them as slashes.
    Case("backslash-after-host", "https://example.com\\evil.com"),
    Case("backslash-scheme", "https:\\\\example.com"),
    Case("backslash-at-evil-first", "https://evil.com\\@example.com"),
    Case("backslash-at-allowed-first", "https://example.com\\@evil.com"),
    Case("backslash-dot-allowed", "https://evil.com\\.example.com"),
    Case("backslash-referer", "https://evil.com\\@example.com/", REFERER),
    # White space and control characters anywhere.
    Case("tab-in-host", "https://exam\tple.com"),
    Case("tab-trailing", "https://example.com\t"),
    Case("space-leading", " https://example.com"),
    Case("space-trailing", "https://example.com "),
    Case("newline-trailing", "https://example.com\n"),
    Case("newline-in-host", "https://example.com\n.evil.com"),
    Case("carriage-return", "https://example.com\r"),
    Case("crlf-header-injection", "https://example.com\r\nSet-Cookie: a=1"),
    Case("nul-trailing", "https://example.com\x00"),
    Case("nul-in-host", "https://example.com\x00.evil.com"),
    Case("vertical-tab", "https://example.com\x0b"),
    Case("form-feed", "https://example.com\x0c"),
    Case("delete-char", "https://example.com\x7f"),
    Case("next-line-char", "https://example.com\x85"),
    Case("no-break-space", "https://example.com\xa0"),
    Case("line-separator", "https://example.com\u2028"),
    Case("ideographic-space", "https://example.com\u3000"),
    Case("newline-referer", "https://example.com/\n", REFERER),
    Case("tab-userinfo-referer", "https://evil.com\t@example.com/", REFERER),
    # Two origins in one value.
    Case("comma-allowed-first", "https://example.com, https://evil.com"),
    Case("comma-evil-first", "https://evil.com, https://example.com"),
    Case("comma-no-space", "https://example.com,https://evil.com"),
    Case("comma-duplicate", "https://example.com,https://example.com"),
    Case("space-allowed-first", "https://example.com https://evil.com"),
    Case("space-evil-first", "https://evil.com https://example.com"),
    Case("semicolon-joined", "https://example.com;https://evil.com"),
    Case("pipe-joined", "https://example.com|https://evil.com"),
    Case("percent-comma-joined", "https://evil.com%2C https://example.com"),
    Case("comma-referer", "https://example.com/,https://evil.com/", REFERER),
)

ALLOWED = (
    Case("exact", "https://example.com"),
    Case("host-upper", "https://EXAMPLE.COM"),
    Case("host-mixed", "https://Example.Com"),
    Case("scheme-upper", "HTTPS://example.com"),
    Case("all-mixed", "HtTpS://ExAmPlE.cOm"),
    Case("default-port", "https://example.com:443"),
    Case("default-port-upper", "HTTPS://EXAMPLE.COM:443"),
    Case("subdomain", "https://sub.example.com"),
    Case("deep-subdomain", "https://a.b.c.example.com"),
    Case("subdomain-mixed-default-port", "https://SUB.Example.com:443"),
    Case("subdomain-label-63", "https://" + "a" * 63 + ".example.com"),
    Case("subdomain-host-253", "https://" + ("a" * 63 + ".") * 3 + "a" * 49 + ".example.com"),
    Case("wildcard-only-sub", "https://a.example.org"),
    Case("wildcard-only-deep", "https://deep.sub.example.org"),
    Case("localhost-port", "http://localhost:5000"),
    Case("localhost-upper", "http://LOCALHOST:5000"),
    Case("idn-punycode", "https://xn--bcher-kva.example"),
    Case("idn-punycode-upper", "https://XN--BCHER-KVA.EXAMPLE"),
    Case("idn-punycode-default-port", "https://xn--bcher-kva.example:443"),
    Case("ipv4", "http://127.0.0.1:8000"),
    Case("ipv6", "http://[::1]:8000"),
    # The same address as ::1, not in the form browsers send: IPv6 from clients is
    # compressed, not refused, unlike non-canonical IPv4 (see the module docstring).
    Case("ipv6-uncompressed", "http://[0:0:0:0:0:0:0:1]:8000"),
    Case("ipv6-dotted-tail", "http://[::0.0.0.1]:8000"),
    Case("referer-root", "https://example.com/", REFERER),
    Case("referer-path-query-fragment", "https://example.com/path?q=1#frag", REFERER),
    Case("referer-subdomain", "https://sub.example.com/cart", REFERER),
    Case("referer-mixed-default-port", "https://Example.com:443/a", REFERER),
    Case("referer-no-path", "https://example.com", REFERER),
    # The authority ends at "?", "#" or "/": what follows cannot change the origin.
    Case("referer-at-in-query", "https://example.com?@evil.com", REFERER),
    Case("referer-at-in-fragment", "https://example.com#@evil.com", REFERER),
    Case("referer-other-url-in-path", "https://example.com/https://evil.com", REFERER),
    Case("referer-localhost", "http://localhost:5000/", REFERER),
    Case("referer-idn", "https://xn--bcher-kva.example/seite", REFERER),
    Case("referer-wildcard-only", "https://a.example.org/x", REFERER),
    Case("referer-ipv6", "http://[::1]:8000/", REFERER),
)
