"""A Streamlit app that greets whoever hubauth-proxy says is calling (``st.context``)."""

import streamlit as st

user = st.context.headers.get("X-Forwarded-User", "nobody")
st.title(f"Hello {user}")
n = st.slider("n", 0, 10, 3)
st.write("*" * n)
