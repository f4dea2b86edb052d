"""LR0.FM Explorer — Streamlit entry point (``streamlit run app.py``)."""

import streamlit as st

st.set_page_config(page_title="LR0.FM Explorer", layout="wide")
st.title("LR0.FM Explorer")
st.info(
    "The app is under construction: its pages (resolution explorer, leaderboards, Grad-CAM, "
    "inside the model) are being built on the `lr0fm_core` engine. Meanwhile the `lr0fm` command "
    "line does the work: `lr0fm --help`."
)
