"""LR0.FM Explorer: the Streamlit app (``streamlit run app.py``).

Registers the pages that exist (:data:`lr0fm_core.ui.PAGES`) and draws the model sidebar before each.
``LR0FM_RANDOM_INIT=1`` and ``LR0FM_APP_MODEL=<model>`` try it without weights (see lr0fm_core.ui.session).
"""

from pathlib import Path

import streamlit as st

from lr0fm_core.models.registry import models_table
from lr0fm_core.ui import available_pages, session

APP_DIR = Path(__file__).parent
MODEL_COLUMNS = {"display_name": "model", "family": "family", "architecture": "architecture", "params_m": "params (M)",
                 "pretraining_data": "pretraining data", "resolution": "input (px)"}


def home() -> None:
    st.title("LR0.FM Explorer")
    st.markdown(
        "See, measure and compare how zero-shot vision-language models (CLIP, OpenCLIP, MetaCLIP, CLIPA, "
        "SigLIP, CoCa, EVA-CLIP) break on **low-resolution images**. The tool implements *LR0.FM: Low-Res "
        "Benchmark and Improving Robustness for Zero-Shot Classification in Foundation Models* "
        "(Pathak et al., ICLR 2025): its exact low-resolution pipeline (a photo shrunk to 16, 32, 64 or "
        "128 px and scaled back up to the model's input), the CLIP zero-shot protocol, and its robustness "
        "metrics γ, Γ, SAR and WAR."
    )
    for page in file_pages:
        st.page_link(page)
    st.caption("Pick the model in the sidebar. Without network, turn on *Random-init weights* to try the app "
               "(its predictions are meaningless), or give a local checkpoint file.")
    table = models_table()
    with st.expander(f"The paper's backbones that open_clip can load ({len(table)})"):
        st.dataframe(table[list(MODEL_COLUMNS)].rename(columns=MODEL_COLUMNS), hide_index=True)


st.set_page_config(page_title="LR0.FM Explorer", page_icon=":material/photo_size_select_small:", layout="wide")
file_pages = [st.Page(APP_DIR / page.file, title=page.title, icon=page.icon) for page in available_pages(APP_DIR)]
current = st.navigation([st.Page(home, title="Home", icon=":material/home:", default=True), *file_pages])
session.sidebar()
current.run()
