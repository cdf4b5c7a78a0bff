"""数据管理 (analysts only): upload a wave or an indicator sheet → validation report → preview
against the previous wave → publish or discard; wave history with roll back; official decisions
and inspection results."""

import datetime

import polars as pl
import streamlit as st

from pages._shared import (
    definitions,
    is_analyst,
    leftovers_notice,
    localise_uploader,
    require_entry,
    sample_badge,
    warehouse,
    warm_after_publish,
)
from pipelines import (
    DECISION_TYPES,
    UPLOAD_TYPES,
    Confirmations,
    IngestError,
    LayoutChoice,
    beijing_expr,
    check_bytes,
    column_mapping,
    detect_layout,
    header_targets,
    indicator_preview,
    ingest_bytes,
    is_complete,
    read_decisions,
    release_differences,
    release_wave,
    sheet_names,
    survey_preview,
    target_label,
    wave_display,
    wave_display_expr,
)
from pipelines.present import session_keys as keys
from pipelines.present.access import granted
from pipelines.present.upload import detected_table, proposed_wave
from pipelines.store.warehouse import WarehouseError

require_entry()   # before anything renders: only inside app.py's navigation

UNUSED = "（不使用）"
KIND_NAMES = {"survey": "调查数据", "indicators": "工作指标"}

if not is_analyst():  # the page is not in a viewer's navigation; this guards direct calls too
    st.error("此页仅限分析人员。")
    st.stop()

wh = warehouse()
defs = definitions()
AUTOMATIC_SHEETS = "（所有有表头的工作表）"


def layout_choice(data: bytes, file_name: str, kind: str, source: str) -> LayoutChoice:
    """The sheet and header row to read: the remembered choice for `source` as the default,
    corrected here and remembered on request."""
    sheets_remembered, row_remembered = wh.layout_choice(source, kind)
    names = sheet_names(data, file_name)
    left, right = st.columns(2)
    options = [AUTOMATIC_SHEETS, *names]
    default = sheets_remembered[0] if sheets_remembered and sheets_remembered[0] in names else \
        AUTOMATIC_SHEETS
    sheet = left.selectbox("读取的工作表", options, index=options.index(default),
                           key=f"layout_sheet_{file_name}_{kind}", disabled=not names,
                           help="工作簿有多个工作表时，默认读取所有表头相同的工作表")
    row = right.number_input("表头所在行（Excel 中的行号；0 表示自动识别）", min_value=0,
                             max_value=10_000, value=row_remembered or 0, step=1,
                             key=f"layout_row_{file_name}_{kind}")
    choice = LayoutChoice((sheet,) if sheet != AUTOMATIC_SHEETS else (), int(row) or None)
    if st.button(f"记住“{source}”的工作表与表头行", key=f"layout_save_{kind}"):
        wh.save_layout_choice(source, kind, list(choice.sheets), choice.header_row, by=user)
        st.success("已记住：下次上传这一来源的文件时自动使用。")
    return choice


st.title("数据管理")
sample_badge(wh)
user = granted(st.session_state.get(keys.ACCESS_GRANT))[1] or "分析人员"
if message := st.session_state.pop(keys.FLASH, None):
    st.success(message)
upload, releases, versions, decisions, audit = st.tabs(
    ["上传数据", "对领导发布", "期次与版本", "正式决定与验收", "操作记录"])

if notice := leftovers_notice():
    st.info(notice)


def withdraw_form(loads: pl.DataFrame) -> None:
    """撤回 a published load: chosen from those in use, with a reason and an explicit
    confirmation; the load stays in the history (已撤回) and the withdrawal is audited."""
    published = loads.filter(pl.col("status") == "active").sort("load_id", descending=True)
    with st.form("withdraw"):
        st.markdown("**撤回已发布的数据**（该版本保留在导入记录中，状态为“已撤回”，各页面不再使用）")
        if published.is_empty():
            st.caption("目前没有已发布的数据。")
            st.form_submit_button("撤回", disabled=True)
            return
        rows = {r["load_id"]: r for r in published.iter_rows(named=True)}
        chosen = st.selectbox("要撤回的版本", list(rows), key="withdraw_load", format_func=lambda i: (
            f"{wave_display(rows[i]['wave'])} · {KIND_NAMES[rows[i]['kind']]} · 导入编号 {i}"
            f" · {rows[i]['source_name']}"))
        reason = st.text_input("撤回原因（必填，记入操作记录）", key="withdraw_reason")
        sure = st.checkbox("我已核对：撤回后该期的这类数据不再参与得分与排名", key="withdraw_sure")
        if not st.form_submit_button("撤回", type="primary"):
            return
    row = rows[chosen]
    if not reason.strip():
        st.error("请写明撤回原因。")
        return
    if not sure:
        st.error("请先勾选确认，再点“撤回”。")
        return
    try:
        wh.withdraw_wave(row["wave"], row["kind"], reason=reason, by=user)
    except WarehouseError as exc:
        st.error(str(exc))
        return
    st.session_state[keys.FLASH] = (f"已撤回{wave_display(row['wave'])}的{KIND_NAMES[row['kind']]}"
                                    f"（导入编号 {chosen}），导入记录中保留为“已撤回”。")
    st.rerun()


with upload:
    kind = st.radio("数据类型", ["survey", "indicators"], horizontal=True,
                    format_func={"survey": "调查数据（受访者）", "indicators": "工作指标表"}.get)
    # one box per data type: a wave whose survey is in proposes itself for its indicator sheet
    wave_key = f"{keys.UPLOAD_WAVE}_{kind}"
    if wave_key not in st.session_state:
        st.session_state[wave_key] = proposed_wave(wh.waves(), kind)
    wave = st.text_input("期次（例如 2026、2026H1、2026Q1）", key=wave_key)
    localise_uploader()
    file = st.file_uploader("选择文件（Excel：xlsx、xls；WPS：et；ODS；网页导出的 xls；CSV 或文本："
                            "UTF-8、GBK/GB18030、UTF-16；Parquet）", type=list(UPLOAD_TYPES),
                            # a new widget after each publish/discard and per data type: the
                            # browser then shows no stale file (popping a widget's state does not)
                            key=f"upload_file_{kind}_{st.session_state.get(keys.UPLOAD_ROUND, 0)}")
    source = st.text_input("数据来源（用于记住这一来源的列对应关系）", value="默认",
                           key="upload_source")
    confirmed = Confirmations()
    if kind == "survey":
        st.caption("以下情况默认拒绝导入，确认无误后再勾选（勾选会记入导入提示）：")
        round_ = st.session_state.get(keys.UPLOAD_ROUND, 0)
        confirmed = Confirmations(
            equal_weights=st.checkbox("按等权重导入（文件没有权重列时，每人权重为1）",
                                      key=f"confirm_equal_weights_{round_}"),
            allow_missing_counties=st.checkbox("允许缺少区县导入（本期确有区县未调查）",
                                               key=f"confirm_missing_counties_{round_}"),
            allow_repeat=st.checkbox("确认不是重复的往期数据（文件与已导入的某期大量相同）",
                                     key=f"confirm_repeat_{round_}"))
    if file is not None and wave:
        data = file.getvalue()
        remembered = wh.header_map(source, kind)
        with st.expander("导入助手：读取的工作表与表头行（自动识别，可更正）", expanded=True):
            layout = layout_choice(data, file.name, kind, source)
            try:
                detected = detect_layout(defs, kind, data, file.name,
                                         {h: t for h, t in remembered.items() if t}, layout)
            except IngestError as exc:
                st.error(exc.report())
                st.stop()
            if detected.notes:
                st.dataframe(detected_table(list(detected.notes)), hide_index=True, width="stretch")
            else:
                st.caption(f"表头在第1行，读取 {detected.frame.height} 行数据。")
        headers = detected.frame.columns
        mapping = column_mapping(defs, kind, headers, remembered)
        labels = {header_label: target for target, header_label in
                  ((t, target_label(defs, t)) for t in header_targets(defs, kind))}
        with st.expander("列对应关系（已按表头别名和已记住的选择填好，可修改）",
                         expanded=bool((mapping["how"] == "未使用").any())):
            edited = st.data_editor(
                mapping.select(pl.col("header").alias("文件中的列"),
                               pl.col("label").fill_null(UNUSED).alias("对应字段"),
                               pl.col("how").alias("来源")),
                column_config={"对应字段": st.column_config.SelectboxColumn(
                    options=[UNUSED, *labels])}, disabled=["文件中的列", "来源"],
                hide_index=True, width="stretch", key=f"mapping_{file.name}_{kind}")
            chosen = {h: labels.get(label) for h, label in zip(edited["文件中的列"],
                                                               edited["对应字段"], strict=False)}
            if st.button(f"记住“{source}”的列对应关系"):
                wh.save_header_map(source, kind, chosen, by=user)
                st.success("已记住：下次上传这一来源的文件时自动使用。")
        automatic = dict(zip(mapping["header"], mapping["target"], strict=False))
        renames = {h: t for h, t in chosen.items() if t != automatic.get(h) or
                   mapping.filter(pl.col("header") == h)["how"][0] == "已记住"}
        try:
            checked = check_bytes(wh, defs, data, file.name, wave.strip(), kind, renames=renames,
                                  confirmed=confirmed, layout=layout)
        except IngestError as exc:
            st.error(f"文件未通过校验，共 {exc.total} 个问题（未做任何更改）。请修改后重新上传。")
            st.dataframe(pl.DataFrame([{"行": p.row, "列": p.column, "问题": p.message}
                                       for p in exc.problems]), hide_index=True, width="stretch")
            st.stop()
        st.success(f"校验通过：{checked.rows.height} 行。")
        if checked.already_loaded is not None:
            st.info(f"这个文件已经导入过该期次（导入编号 {checked.already_loaded}），无需再次发布。")
        if checked.warnings or checked.dropped_columns:
            st.subheader("导入助手：识别结果（发布前请核对）")
            st.dataframe(detected_table(checked.warnings, checked.dropped_columns),
                         hide_index=True, width="stretch", key="detected")
        if checked.dropped_columns:
            st.warning("以下个人信息列不会保存：" + "、".join(
                f"{h}（{k}）" for h, k in checked.dropped_columns.items()))
        earlier = [w for w in wh.waves().filter(pl.col("survey_load_id").is_not_null()
                                                if kind == "survey" else
                                                pl.col("indicators_load_id").is_not_null())["wave"]
                   if w < checked.wave]
        if earlier:
            st.subheader(f"与{wave_display(earlier[-1])}对比")
            if kind == "survey":
                preview = survey_preview(defs, checked.rows, wh.responses(earlier[-1]))
                flagged = preview.counts.filter(pl.col("flag") != "")
                st.markdown(f"各县样本量：{preview.counts.height} 个县，{flagged.height} 个需要注意。")
                st.dataframe(preview.counts.select(
                    pl.col("county_code").alias("区县代码"), pl.col("new").alias("本期"),
                    pl.col("previous").alias("上期"), pl.col("flag").alias("提示")),
                    hide_index=True, width="stretch", height=240)
                st.markdown(f"题目得分突变（县题平均分变化超过10分）：{preview.shifts.height} 处")
                if preview.shifts.height:
                    st.dataframe(preview.shifts.head(50), hide_index=True, width="stretch")
                with st.expander("各题答案分布（本期与上期）"):
                    st.dataframe(preview.answers, hide_index=True, width="stretch")
            else:
                changes = indicator_preview(checked.rows, wh.indicators(earlier[-1]))
                st.markdown(f"较上期变化超过50%（或由0变为非0）的指标值：{changes.height} 个")
                st.dataframe(changes.head(100).select(
                    pl.col("county_code").alias("区县代码"), pl.col("indicator_id").alias("指标"),
                    pl.col("value").alias("本期"), pl.col("value_previous").alias("上期"),
                    (pl.col("change") * 100).round(1).alias("变化（%）"),
                    pl.col("flag").alias("提示")), hide_index=True, width="stretch")
        replace = False
        if checked.replaces is not None and checked.already_loaded is None:
            replace = st.checkbox(f"替换{wave_display(checked.wave)}现有数据（原版本保留，可恢复）")
        publish, discard = st.columns(2)
        if publish.button("发布", type="primary", disabled=checked.already_loaded is not None
                          or (checked.replaces is not None and not replace)):
            try:
                result = ingest_bytes(wh, defs, data, file.name, checked.wave, kind,
                                      replace=replace, loaded_by=user, renames=renames,
                                      confirmed=confirmed, layout=layout)
            except (IngestError, WarehouseError) as exc:
                st.error(str(exc))
            else:
                with st.spinner("正在为各页面预先计算最新一期的得分与风险……"):
                    note = warm_after_publish()
                st.session_state[keys.FLASH] = (result.summary() + " 各页面已按新数据更新。" + note
                                                + " 查看者（领导）要等该期调查数据和工作指标表都齐全、"
                                                "并在“对领导发布”页签发布后才能看到。")
                # shown once it can be opened: survey and (where scored) indicators in
                st.session_state[keys.PENDING_WAVE] = checked.wave
                st.session_state[keys.UPLOAD_ROUND] = st.session_state.get(keys.UPLOAD_ROUND, 0) + 1
                st.rerun()
        if discard.button("放弃"):
            st.session_state[keys.UPLOAD_ROUND] = st.session_state.get(keys.UPLOAD_ROUND, 0) + 1
            st.rerun()

with releases:
    st.caption("新的一期只有在调查数据和工作指标表都已上传、并由分析人员“对领导发布”后，查看者（领导）"
               "才能看到；在此之前查看者看到的是最近一期已发布的结果。发布时冻结各县得分、名次和挂牌"
               "结果，以后重新计算如有不同，在这里列出差异，不会悄悄替换已公布的数字。")
    released = set(wh.released_waves())
    rows = []
    for w in wh.waves().filter(pl.col("survey_load_id").is_not_null())["wave"].to_list():
        status = "已发布" if w in released else ("未发布" if is_complete(wh, w)
                                               else "未发布（数据不完整：缺工作指标表）")
        rows.append({"期次": wave_display(w), "状态": status, "wave": w})
    st.dataframe(pl.DataFrame(rows, schema=["期次", "状态", "wave"]).drop("wave"),
                 hide_index=True, width="stretch")
    for w in [r["wave"] for r in rows if r["状态"] == "未发布"]:
        if st.button(f"对领导发布{wave_display(w)}", type="primary", key=f"release_{w}"):
            try:
                with st.spinner("正在冻结得分、名次与挂牌结果……"):
                    number = release_wave(wh, defs, w, user)
            except Exception as exc:  # a wave that cannot be scored: say why, change nothing
                st.error(f"未发布：{exc}")
            else:
                st.session_state[keys.FLASH] = f"已对领导发布{wave_display(w)}（发布编号 {number}）。"
                st.rerun()
    records = wh.releases()
    st.markdown("**发布记录**")
    st.dataframe(records.select(
        pl.col("release_id").alias("发布编号"), wave_display_expr("wave").alias("期次"),
        beijing_expr("released_at").alias("发布时间（北京时间）"), pl.col("released_by").alias("发布人"),
        pl.col("scheme_fingerprint").alias("方案指纹"), pl.col("survey_load_id").alias("调查导入编号"),
        pl.col("indicators_load_id").alias("指标导入编号"), pl.col("digest").str.slice(0, 16)
        .alias("结果摘要"), pl.col("note").alias("说明")), hide_index=True, width="stretch")
    frozen = sorted(set(records.filter(pl.col("frozen"))["wave"].to_list()))
    if frozen:
        with st.form("release_check"):
            check = st.selectbox("核对已发布的期次", frozen, index=len(frozen) - 1,
                                 format_func=wave_display)
            if st.form_submit_button("按现有数据和方案重新计算并对比"):
                differences = release_differences(wh, defs, check)
                if differences is None or differences.height == 0:
                    st.success(f"{wave_display(check)}重新计算的得分、名次和挂牌结果与发布时完全一致。")
                else:
                    st.warning(f"{wave_display(check)}重新计算与发布时不同：{differences.height} 个区县。"
                               "已公布的数字仍以发布记录为准。")
                    st.dataframe(differences.select(
                        pl.col("county_name").alias("区县"),
                        pl.col("score_released").round(2).alias("发布时得分"),
                        pl.col("score_now").round(2).alias("现在得分"),
                        pl.col("rank_released").alias("发布时名次"), pl.col("rank_now").alias("现在名次"),
                        pl.col("listed_released").replace_strict({True: "是", False: "否"},
                                                                 default=None).alias("发布时挂牌"),
                        pl.col("listed_now").replace_strict({True: "是", False: "否"},
                                                            default=None).alias("现在挂牌")),
                        hide_index=True, width="stretch")

with versions:
    loads = wh.loads()
    status = {"active": "使用中", "superseded": "已被替换", "rolled_back": "已回滚",
              "withdrawn": "已撤回"}
    st.dataframe(loads.select(
        pl.col("load_id").alias("导入编号"),
        wave_display_expr("wave").alias("期次"),
        pl.col("kind").replace_strict(KIND_NAMES).alias("类型"),
        pl.col("status").replace_strict(status).alias("状态"), pl.col("n_rows").alias("行数"),
        pl.col("source_name").alias("文件"), pl.col("source_sha256").str.slice(0, 12).alias("SHA-256"),
        pl.col("loaded_by").alias("导入人"), beijing_expr("loaded_at").alias("时间（北京时间）")),
        hide_index=True, width="stretch")
    with st.form("rollback"):
        st.markdown("**恢复到被替换前的版本**")
        target = st.selectbox("期次", wh.waves()["wave"].to_list(), format_func=wave_display)
        which = st.radio("类型", ["survey", "indicators"], horizontal=True,
                         format_func={"survey": "调查数据", "indicators": "工作指标"}.get)
        if st.form_submit_button("恢复"):
            try:
                restored = wh.rollback_wave(target, which, by=user)
            except WarehouseError as exc:
                st.error(str(exc))
            else:
                st.success(f"已将{wave_display(target)}恢复为导入编号 {restored} 的版本。")
    withdraw_form(loads)

with decisions:
    counties = wh.counties()
    codes = counties["county_code"].to_list()
    names = dict(zip(codes, counties["county_name"], strict=False))
    waves = wh.waves()["wave"].to_list()
    left, right = st.columns(2)
    with left.form("decision"):
        st.markdown("**录入正式决定（挂牌/摘帽）**")
        county = st.selectbox("区县", codes, format_func=lambda c: f"{names[c]}（{c}）")
        wave_d = st.selectbox("依据期次", waves, index=len(waves) - 1 if waves else 0,
                              format_func=wave_display)
        level = st.radio("层级", ["省", "市"], horizontal=True)
        action = st.selectbox("决定", DECISION_TYPES)
        day = st.date_input("决定日期", value=datetime.date.today())
        document = st.text_input("文号")
        if st.form_submit_button("保存决定"):
            wh.record_decision(county, wave_d, level, action, day.isoformat(), document, user)
            st.success(f"已录入：{names[county]} {action}")
    with right.form("inspection"):
        st.markdown("**录入验收结果**")
        county_i = st.selectbox("区县", codes, format_func=lambda c: f"{names[c]}（{c}）",
                                key="inspection_county")
        wave_i = st.selectbox("期次", waves, index=len(waves) - 1 if waves else 0,
                              format_func=wave_display, key="inspection_wave")
        passed = st.radio("结论", ["合格", "不合格"], horizontal=True) == "合格"
        day_i = st.date_input("验收日期", value=datetime.date.today(), key="inspection_day")
        note = st.text_input("说明")
        if st.form_submit_button("保存验收结果"):
            wh.record_inspection(county_i, wave_i, passed, day_i.isoformat(), note, user)
            st.success(f"已录入：{names[county_i]} 验收{'合格' if passed else '不合格'}")
    st.markdown("**从 CSV/Excel 导入正式决定**")
    st.caption("列：区县代码或区县、期次、层级（省/市）、决定（" + "、".join(DECISION_TYPES)
               + "），可含决定日期、文号、起始日期、结束日期、整改期限（可写“年底前”）、备注。"
               "有一行不合格则整个文件不导入，并指出是第几行。")
    upload = st.file_uploader("决定清单", type=list(UPLOAD_TYPES),
                              key="decisions_file")
    if upload is not None:
        try:
            imported = read_decisions(upload.getvalue(), upload.name, counties)
        except IngestError as exc:
            st.error(exc.report())
        else:
            st.dataframe(imported, hide_index=True, width="stretch")
            if st.button(f"导入这 {imported.height} 条决定", key="decisions_import"):
                wh.record_decisions(imported, user, upload.name)
                st.success(f"已导入正式决定 {imported.height} 条。")
    st.dataframe(wh.decisions().join(counties.select("county_code", "county_name"),
                                     on="county_code", how="left").select(
        pl.col("wave").alias("期次"), pl.col("county_name").alias("区县"),
        pl.col("level").alias("层级"), pl.col("action").alias("决定"),
        pl.col("decided_on").alias("日期"), pl.col("document").alias("文号"),
        pl.col("period_start").alias("起始日期"), pl.col("period_end").alias("结束日期"),
        pl.col("deadline").alias("整改期限"), pl.col("note").alias("备注"),
        pl.col("recorded_by").alias("录入人")), hide_index=True, width="stretch")

with audit:
    st.caption("每一次数据变更（发布、替换、回滚、对领导发布、录入决定与验收、保存列对应关系、恢复备份）："
           "谁、何时、做了什么、文件的 SHA-256。")
    log = wh.audit_log()
    st.dataframe(log.select(
        beijing_expr("at").alias("时间（北京时间）"), pl.col("by_user").alias("操作人"),
        pl.col("action").alias("操作"),
        wave_display_expr("wave").alias("期次"),
        pl.col("detail").alias("内容"), pl.col("sha256").alias("文件SHA-256")),
        hide_index=True, width="stretch")
