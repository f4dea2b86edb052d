"""Resolution explorer: one photo through the paper's low-resolution pipeline at every resolution (Figs. 1-2)."""

import streamlit as st

from lr0fm_core import explore
from lr0fm_core.models.loading import UNTRAINED_WARNING
from lr0fm_core.pipeline import shorter_side_size
from lr0fm_core.resolution import HR
from lr0fm_core.ui import ensure_app_shell, explorer_charts, session, shown_errors, widgets

ensure_app_shell()

st.title("Resolution explorer")
st.caption("How a zero-shot model's answer changes as the same photo gets fewer pixels: each stop shrinks the "
           "photo's shorter side to *n* px (bicubic) and scales it back up to the model's input, exactly as the "
           "paper's pipeline does (LR0.FM, Appendix E, Listing 1).")
loaded = session.require_model()

photo_column, label_column = st.columns(2)
with photo_column:
    if st.radio("Photo", ["Sample gallery", "Your photos"], horizontal=True, key="explore_source") == "Sample gallery":
        photos = [widgets.sample_photo("explore_gallery")]
    else:
        photos = widgets.uploaded_photos("explore_uploads", multiple=True)
    photo = photos[st.selectbox("Photo to explore", range(len(photos)), format_func=lambda i: photos[i].name,
                                key="explore_photo")] if len(photos) > 1 else photos[0]

with label_column:
    label_set = widgets.label_set_picker("explore")

stops = explore.slider_stops(loaded.resolution)
with shown_errors("Prediction"):
    head = session.zero_shot_head(loaded, label_set)
    sweep = session.resolution_sweep(loaded, head, photo, stops)

resolution = st.select_slider("Input resolution (shorter side, px)", stops, value=16 if 16 in stops else HR,
                              format_func=explore.stop_label, key="explore_resolution")
st.caption("★ the paper's resolutions (16, 32, 64, 128 px; accuracy starts to drop at 64 and falls below 32, "
           f"Fig. 1). HR is the model's own {loaded.resolution} px preprocessing.")

camera, seen = session.previews(photo, resolution, loaded.resolution)
if resolution == HR:
    camera_caption = f"The photo ({photo.image.width}×{photo.image.height} px)"
else:
    width, height = shorter_side_size(*photo.image.size, resolution)
    camera_caption = f"What a {width}×{height} px camera delivers (enlarged, nearest neighbour)"
left, middle, right = st.columns([1, 1, 1.3])
left.image(camera, caption=camera_caption, output_format="PNG")
middle.image(seen, caption=f"What the model sees ({loaded.resolution}×{loaded.resolution})", output_format="PNG")
with right:
    st.markdown(f"**Top-5 at {explore.stop_label(resolution)}**")
    st.plotly_chart(explorer_charts.topk_figure(sweep.topk(resolution)), key="explore_topk")

true_index = explore.true_label_index(photo, sweep.classnames)
if true_index is not None:
    trace = sweep.label_trace(true_index).set_index("resolution")
    st.info(f"True label: **{photo.true_label}**, rank {trace.loc[resolution, 'rank']} at "
            f"{explore.stop_label(resolution)} (rank {trace.loc[HR, 'rank']} at HR).")

hr_label = sweep.classnames[sweep.top1(HR)]
change = sweep.first_change()
st.plotly_chart(explorer_charts.label_trace_figure(sweep.hr_label_trace(), hr_label, change), key="explore_trace")
if change is None:
    st.markdown(f"“{hr_label}” stays the top-1 label at every resolution down to {stops[0]} px.")
else:
    st.markdown(f"Going down from HR, “{hr_label}” first loses the top spot at **{change} px**, "
                f"to “{sweep.classnames[sweep.top1(change)]}”.")

with st.expander("Top-5 at every resolution"):
    st.dataframe(sweep.to_frame().astype({"resolution": str}), hide_index=True, key="explore_table")
    warning = UNTRAINED_WARNING if loaded.untrained else None
    csv_column, json_column = st.columns(2)
    csv_column.download_button("Download CSV", sweep.to_csv(warning=warning), on_click="ignore", mime="text/csv",
                               file_name=explore.export_name(photo.name, loaded.name, "csv"), key="explore_csv")
    json_column.download_button("Download JSON", sweep.to_json(warning=warning), on_click="ignore",
                                mime="application/json", key="explore_json",
                                file_name=explore.export_name(photo.name, loaded.name, "json"))
