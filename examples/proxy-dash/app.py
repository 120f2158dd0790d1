"""A Dash app that greets whoever hubauth-proxy says is calling: ``python app.py PORT``.

Dash must know its prefix: the Hub gives it in JUPYTERHUB_SERVICE_PREFIX (the proxy passes
its environment to the app).
"""

import os
import sys

import flask
from dash import Dash, Input, Output, dcc, html

app = Dash(__name__, url_base_pathname=os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/"))
app.layout = html.Div([html.H1(id="hello"), dcc.Slider(0, 10, 1, value=3, id="n")])


@app.callback(Output("hello", "children"), Input("n", "value"))
def hello(n: int) -> str:
    user = flask.request.headers.get("X-Forwarded-User", "nobody")
    return f"Hello {user} " + "*" * n


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), debug=False)
