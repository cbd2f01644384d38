"""Names an attacker might send as username, course or file; every one must be refused."""

HOSTILE_NAMES = [
    "", ".", "..", "...", "../etc", "..\\etc", "a/../../etc", "a/b", "/etc/passwd", "\\\\server\\share",
    "a\\b", "%2e%2e", "%2e%2e%2fetc", "..%2fetc", "%2F", "%5c", "..%c0%af", "a\x00b", "nul\x00.ipynb",
    "line\nbreak", "tab\there", "cr\rhere", "\x1b[31m", "del\x7f", " leading", "trailing ", ".hidden", ".sifu-volume",
    "x" * 201, "a" * 5000, "ａｌｉｃｅ", "alіce", "\u2024\u2024", "\u2215etc", "\uff0e\uff0e", "caf\u00e9",
    "$(touch pwned)", "`id`", "{{7*7}}", "a;rm -rf /", "a|b", "a'b", 'a"b', "<script>", "a*b", "~root/x",
    "?x", "#x", "a&b",
]
