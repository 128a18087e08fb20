"""The HTML pages: plain forms, no script, every value escaped.

The Content-Security-Policy (see middleware.py) allows nothing inline, so the style sheet is served from
/style.css rather than written into the page.
"""

from __future__ import annotations

from html import escape

STYLE_CSS = """\
body { font-family: system-ui, sans-serif; max-width: 24rem; margin: 4rem auto; padding: 0 1rem; }
label { display: block; margin-top: 1rem; }
input[type=text], input[type=password] { width: 100%; padding: .4rem; box-sizing: border-box; }
button { margin-top: 1.2rem; padding: .4rem 1.2rem; }
.error { color: #a00; }
"""

GENERIC_LOGIN_ERROR = "Invalid username or password."
MALFORMED_ERROR = "The request could not be understood. Please try again."
CSRF_ERROR = "Your form expired. Please try again."
UNAVAILABLE_ERROR = "Login is unavailable right now. Please try again later."


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n"
        '<link rel="stylesheet" href="/style.css">\n'
        f"</head>\n<body>\n{body}</body>\n</html>\n"
    )


def login_page(csrf_token: str, *, error: str | None = None) -> str:
    """The login form. The submitted name is not echoed: the answer to any failure is the same bytes."""
    message = f'<p class="error" role="alert">{escape(error)}</p>\n' if error else ""
    return _page(
        "Sign in",
        "<h1>Sign in</h1>\n"
        f"{message}"
        '<form method="post" action="/login">\n'
        f'<input type="hidden" name="csrf" value="{escape(csrf_token)}">\n'
        '<label for="username">Username</label>\n'
        '<input type="text" id="username" name="username" maxlength="64" '
        'autocomplete="username" required autofocus>\n'
        '<label for="password">Password</label>\n'
        '<input type="password" id="password" name="password" maxlength="1024" '
        'autocomplete="current-password" required>\n'
        '<button type="submit">Sign in</button>\n'
        "</form>\n",
    )


def welcome_page(username: str, csrf_token: str) -> str:
    return _page(
        "Welcome",
        f"<h1>Welcome, {escape(username)}</h1>\n"
        '<form method="post" action="/logout">\n'
        f'<input type="hidden" name="csrf" value="{escape(csrf_token)}">\n'
        '<button type="submit">Sign out</button>\n'
        "</form>\n",
    )


def message_page(title: str, message: str) -> str:
    return _page(title, f"<h1>{escape(title)}</h1>\n<p>{escape(message)}</p>\n")
