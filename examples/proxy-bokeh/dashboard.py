"""A Bokeh server app behind hubauth-proxy: it greets whoever the proxy says is calling.

Bokeh keeps a websocket open to the browser; every click travels over it to this code and
the new text travels back. Run by ``bokeh serve`` (see jupyterhub_config.py).
"""

from bokeh.io import curdoc
from bokeh.layouts import column
from bokeh.models import Button, Div

doc = curdoc()
headers = doc.session_context.request.headers if doc.session_context else {}
user = headers.get("X-Forwarded-User", "") or "nobody"
groups = headers.get("X-Forwarded-Groups", "")

greeting = Div(text=f"Hello {user}", name="greeting")
about = Div(text=f"groups: {groups or '(none)'}", name="groups")
counter = Div(text="clicked 0 times", name="counter")
button = Button(label="Click me", name="click")
clicks = 0


def clicked() -> None:
    global clicks
    clicks += 1
    counter.text = f"clicked {clicks} times"


button.on_click(clicked)
doc.add_root(column(greeting, about, button, counter))
doc.title = "hubauth-proxy + Bokeh"
