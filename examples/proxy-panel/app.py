"""A Panel app that greets whoever hubauth-proxy says is calling (``pn.state.headers``)."""

import panel as pn

pn.extension()

user = pn.state.headers.get("X-Forwarded-User", "nobody")
slider = pn.widgets.IntSlider(name="n", start=0, end=10, value=3)
pn.Column(f"# Hello {user}", slider, pn.bind(lambda n: "*" * n, slider)).servable()
