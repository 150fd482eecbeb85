#!/usr/bin/env python3
"""daemon/ui/embed.py: the build refuses a status page that its
Content-Security-Policy would break (a second or attributed <script> or
<style>, a style="..." attribute, an inline on...= handler), and the C++
literal it writes holds the page's bytes exactly (UTF-8, quotes, trigraph
marks and backslashes included).

    ui_embed_test.py
"""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "daemon", "ui"))
import embed  # noqa: E402

GOOD = "<!doctype html><style>p{}</style><p>x</p><script>go()</script></html>"


class EmbedTest(unittest.TestCase):
    def test_the_page_in_the_repository_passes(self):
        with open(os.path.join(HERE, "..", "..", "daemon", "ui", "status.html"),
                  encoding="utf-8") as f:
            self.assertIsNone(embed.check(f.read()))
        self.assertIsNone(embed.check(GOOD))

    def test_what_the_policy_would_block_is_refused(self):
        bad = {
            "two scripts": GOOD.replace("</html>", "<script>more()</script></html>"),
            "an external script": GOOD.replace("<script>go()</script>",
                                               '<script src="https://cdn.example/x.js"></script>'),
            "an attributed script": GOOD.replace("<script>", '<script type="module">'),
            "two styles": GOOD.replace("</html>", "<style>q{}</style></html>"),
            "an attributed style": GOOD.replace("<style>", '<style media="print">'),
            "no script": GOOD.replace("<script>go()</script>", ""),
            "no style": GOOD.replace("<style>p{}</style>", ""),
            "a style attribute": GOOD.replace("<p>", '<p style="color:red">'),
            "an inline handler": GOOD.replace("<p>", '<p onclick="go()">'),
            "an upper-case handler": GOOD.replace("<p>", "<p ONLOAD='go()'>"),
            "an unclosed script": GOOD.replace("</script>", ""),
        }
        for what, html in bad.items():
            with self.subTest(what):
                self.assertIsNotNone(embed.check(html))

    def test_the_literal_holds_the_bytes_exactly(self):
        page = ('<!doctype html><style>p::after{content:"\\"?"}</style>\n'
                "<p>µs · ★ … \u00a0??=</p>\n<script>go('a\\\\b', \"q\")</script>\n").encode()
        with tempfile.TemporaryDirectory() as d:
            src, cpp = os.path.join(d, "page.html"), os.path.join(d, "page.cpp")
            with open(src, "wb") as f:
                f.write(page)
            subprocess.run([sys.executable, embed.__file__, src, cpp], check=True)
            with open(cpp, encoding="utf-8") as f:
                generated = f.read()
            # The literal's pieces, decoded as a C++ compiler would.
            body = generated.split("kStatusPageHtml[] =\n", 1)[1].split(";\n\n", 1)[0]
            decoded = b""
            for line in body.splitlines():
                piece = line.strip()
                self.assertTrue(piece.startswith('"') and piece.endswith('"'), piece)
                decoded += c_literal_bytes(piece[1:-1])
            self.assertEqual(decoded, page)

    def test_a_refused_page_fails_the_build_step(self):
        with tempfile.TemporaryDirectory() as d:
            src, cpp = os.path.join(d, "page.html"), os.path.join(d, "page.cpp")
            with open(src, "w") as f:
                f.write(GOOD.replace("<p>", '<p onclick="go()">'))
            run = subprocess.run([sys.executable, embed.__file__, src, cpp], capture_output=True,
                                 text=True)
            self.assertNotEqual(run.returncode, 0)
            self.assertIn("inline event handler", run.stderr)
            self.assertFalse(os.path.exists(cpp))


def c_literal_bytes(text):
    """The bytes of a C++ string literal's contents made of printable ASCII,
    \\" \\\\ \\? and three-digit octal escapes (all embed.py writes)."""
    out, i = bytearray(), 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            out.extend(c.encode())  # as the compiler reads a UTF-8 source
            i += 1
        elif text[i + 1] in '"\\?':
            out.append(ord(text[i + 1]))
            i += 2
        else:
            out.append(int(text[i + 1:i + 4], 8))
            i += 4
    return bytes(out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
