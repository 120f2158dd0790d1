"""A Gradio app that greets whoever hubauth-proxy says is calling: ``python app.py PORT``.

Gradio serves at / and builds its URLs from ``root_path``: run hubauth-proxy with
``--strip-prefix`` and give Gradio the public prefix.
"""

import os
import sys
from urllib.parse import unquote

import gradio as gr


def hello(n: float, request: gr.Request) -> str:
    user = unquote(request.headers.get("x-forwarded-user", "nobody"))
    return f"Hello {user} " + "*" * int(n)


demo = gr.Interface(hello, gr.Slider(0, 10, value=3), "text")
prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/").rstrip("/")
demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]), root_path=prefix)
