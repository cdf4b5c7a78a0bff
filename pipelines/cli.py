"""Command line: `python -m pipelines {sample,build,ingest,waves,loads,rollback,score,risk,listing,
plan,export,set-password,users}`.

Messages are Chinese; a rejected file prints every problem and exits with status 1 (2 for a usage
error), never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from pipelines.core.allocator import keep_freed_memory
from pipelines.core.clock import beijing_expr, beijing_text
from pipelines.core.problems import IngestError
from pipelines.core.waves import wave_display
from pipelines.scheme.definitions import DefinitionError, load_definitions
from pipelines.store.warehouse import DEFAULT_DB, Warehouse, WarehouseError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's English errors → a Chinese hint
        self.print_usage(sys.stderr)
        print(f"参数有误：{message}（用 -h 查看帮助）", file=sys.stderr)
        raise SystemExit(2)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m pipelines", description="测评看板数据管道")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--db", type=Path, default=DEFAULT_DB,
                       help=f"数据仓库文件（默认 {DEFAULT_DB.name}）")
        return p

    sample = sub.add_parser("sample", help="生成示例省份数据（写入 surveys/sample/）")
    sample.add_argument("--out", type=Path, default=None, help="输出目录（默认 surveys/sample）")
    sample.add_argument("--seed", type=int, default=None, help="随机种子")
    build = with_db(sub.add_parser("build", help="由 surveys/ 构建数据仓库（已存在则跳过）"))
    build.add_argument("--source", type=Path, default=None, help="省份数据目录（默认示例省份）")
    ingest = with_db(sub.add_parser("ingest", help="导入一期调查数据或工作指标表"))
    ingest.add_argument("file", type=Path,
                        help="Excel（xlsx/xls）、WPS（et）、ODS、CSV/TXT（UTF-8/GBK/UTF-16）或 Parquet 文件")
    ingest.add_argument("--wave", required=True, help="期次，例如 2025、2025H1、2025Q4")
    ingest.add_argument("--kind", choices=("survey", "indicators"), default="survey",
                        help="survey = 调查数据（默认），indicators = 工作指标表")
    ingest.add_argument("--replace", action="store_true", help="替换已存在的同期数据（原版本保留）")
    ingest.add_argument("--equal-weights", action="store_true",
                        help="文件没有权重列时，确认按等权重（每人权重为1）导入")
    ingest.add_argument("--allow-missing-counties", action="store_true",
                        help="调查数据缺少部分区县时，确认按缺少导入（缺少的区县会列出）")
    ingest.add_argument("--allow-repeat", action="store_true",
                        help="文件与已导入的往期调查数据大量相同时，确认不是重复上传")
    ingest.add_argument("--sheet", action="append", default=[],
                        help="只读取这个工作表（可重复；默认读取所有表头相同的工作表）")
    ingest.add_argument("--header-row", type=int, default=None,
                        help="表头所在的 Excel 行号（默认按列名自动识别）")
    decisions = with_db(sub.add_parser(
        "decisions", help="从 CSV/Excel 导入正式决定（挂牌、摘帽、通报批评、督办、约谈……）"))
    decisions.add_argument("file", type=Path, help="决定清单：区县代码或区县、期次、层级、决定，"
                           "可含决定日期、文号、起始日期、结束日期、整改期限、备注")
    with_db(sub.add_parser("waves", help="列出已导入的期次"))
    loads = with_db(sub.add_parser("loads", help="列出导入记录（审计）"))
    loads.add_argument("--wave", default=None)
    score = with_db(sub.add_parser("score", help="计算某期各区县得分及其置信区间"))
    score.add_argument("--wave", required=True, help="期次，例如 2025")
    score.add_argument("--scheme", type=Path, default=None,
                       help="按另一评分方案文件评分（例如 surveys/schemes/example_share_satisfied.toml）")
    score.add_argument("--format", choices=("table", "csv", "json"), default="table",
                       help="输出格式：table（默认，便于阅读）、csv、json")
    risk = with_db(sub.add_parser("risk", help="排名不确定性与挂牌风险（本期与下期）"))
    risk.add_argument("--wave", required=True, help="期次，例如 2025")
    risk.add_argument("--format", choices=("table", "csv", "json"), default="table")
    risk.add_argument("--draws", type=int, default=10_000, help="模拟次数（默认 10000）")
    listing = with_db(sub.add_parser("listing", help="挂牌、摘帽规则判定及与正式决定的对照"))
    listing.add_argument("--wave", required=True, help="期次，例如 2025")
    listing.add_argument("--format", choices=("table", "csv", "json"), default="table")
    listing.add_argument("--scheme", type=Path, default=None,
                         help="按另一评分方案文件判定（默认 surveys/scheme.toml）")
    plan = with_db(sub.add_parser("plan", help="下一期抽样方案：按排名需要分配各县样本量"))
    plan.add_argument("--wave", required=True, help="依据截至该期的数据规划下一期，例如 2025")
    plan.add_argument("--total", type=int, required=True, help="下一期总样本量（人）")
    plan.add_argument("--min-per-county", type=int, default=200, help="每县最少样本量（默认 200）")
    plan.add_argument("--max-per-county", type=int, default=None, help="每县最多样本量（默认不限）")
    plan.add_argument("--fixed", action="append", default=[], metavar="代码=样本量",
                      help="固定某县样本量，例如 --fixed 990101=400（可重复）")
    plan.add_argument("--line-weights", default="1,1", metavar="W1,W2",
                      help="后3名线、后10名线错判的权重（默认 1,1）")
    plan.add_argument("--format", choices=("table", "csv", "json"), default="table")
    backup = with_db(sub.add_parser("backup", help="把数据仓库备份到一个新文件"))
    backup.add_argument("out", type=Path, help="备份文件（不存在的新文件，例如 备份-2026-11-23.duckdb）")
    restore = with_db(sub.add_parser("restore", help="由备份文件恢复数据仓库（原仓库另存，不丢失）"))
    restore.add_argument("backup_file", type=Path, metavar="IN", help="备份文件")
    audit = with_db(sub.add_parser("audit", help="列出数据变更记录（谁、何时、做了什么、文件 SHA-256）"))
    audit.add_argument("--format", choices=("table", "csv", "json"), default="table")
    scaled = sub.add_parser("scaled", help="生成规模测试用的合成省份（基准测试用，虚构数据）")
    scaled.add_argument("--scale", choices=("sample", "large", "national"), default="national",
                        help="规模：sample 88县×300人×5期；large 180×600×10；national 2850×400×10")
    scaled.add_argument("--out", type=Path, required=True, help="输出目录（随后可用 build --source 构建）")
    export = with_db(sub.add_parser("export", help="导出会议材料（PPTX）和表格（Excel）"))
    export.add_argument("--wave", required=True, help="期次，例如 2025")
    export.add_argument("--city", help="只导出某市州的区县（市州代码；默认全省）")
    export.add_argument("--pptx", type=Path, help="会议材料输出文件（.pptx）")
    export.add_argument("--xlsx", type=Path, help="表格输出文件（.xlsx）")
    export.add_argument("--draws", type=int, default=10_000, help="模拟次数（默认 10000）")
    sub.add_parser("set-password", help="设置看板分析人员密码（以慢哈希保存在 .streamlit/secrets.toml）")
    users = with_db(sub.add_parser(
        "users", help="管理看板账户：新建、停用、启用、重设密码、列出（账户文件在数据仓库旁）"))
    users.add_argument("action", choices=("add", "disable", "enable", "reset", "list"),
                       help="add 新建，disable 停用，enable 启用，reset 重设密码，list 列出")
    users.add_argument("name", nargs="?", default=None, help="用户名（list 不需要）")
    users.add_argument("--role", choices=("viewer", "analyst", "admin"), default="viewer",
                       help="viewer 查看者，analyst 分析人员，admin 管理员（add 时）")
    users.add_argument("--city", default=None, help="查看者限定的市州代码（add 时；默认全省）")
    users.add_argument("--password-stdin", action="store_true",
                       help="从标准输入读一行作为密码（脚本用；默认交互输入两次）")
    rollback = with_db(sub.add_parser("rollback", help="把某期数据恢复到被替换前的版本"))
    rollback.add_argument("--wave", required=True)
    rollback.add_argument("--kind", choices=("survey", "indicators"), default="survey")
    withdraw = with_db(sub.add_parser(
        "withdraw", help="撤回某期已发布的数据（保留在导入记录中，记入操作记录）"))
    withdraw.add_argument("--wave", required=True, help="期次，例如 2025")
    withdraw.add_argument("--kind", choices=("survey", "indicators"), default="survey",
                          help="survey = 调查数据（默认），indicators = 工作指标表")
    withdraw.add_argument("--reason", required=True, help="撤回原因（记入操作记录）")
    release = with_db(sub.add_parser(
        "release", help="对领导发布一期完整的数据（冻结得分、名次与挂牌结果，记入操作记录）"))
    release.add_argument("--wave", required=True, help="期次，例如 2026")
    release.add_argument("--by", default=None, help="发布人（默认：当前登录名）")
    return parser


REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def reference_markdown() -> str:
    """docs/cli.md, rendered from the argparse definitions so the manual cannot drift from the
    parser (tests/test_docs.py compares the file with this; `make docs` rewrites it)."""
    parser = _parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in sub._choices_actions}
    lines = ["# 命令行参考", "",
             "<!-- 由 pipelines/cli.py 的 argparse 定义生成（make docs），请勿手工编辑。 -->", "",
             f"{parser.description}。用法：`uv run python -m pipelines <命令> [选项]`；"
             "每条命令都可加 `-h` 查看帮助。有问题的输入以中文列出全部问题并以状态 1 退出，"
             "参数有误以状态 2 退出，数据仓库不做任何更改。", "",
             "| 命令 | 作用 |", "| --- | --- |"]
    lines += [f"| [`{name}`](#{name}) | {helps.get(name, '')} |" for name in sub.choices]
    for name, command in sub.choices.items():
        lines += ["", f"## {name}", "", helps.get(name, "") or "", "",
                  f"```\n{_usage(command)}\n```", ""]
        arguments = [a for a in command._actions if not isinstance(a, argparse._HelpAction)]
        if arguments:
            lines += ["| 参数 | 说明 | 默认 | 可选值 |", "| --- | --- | --- | --- |"]
            lines += [_argument_row(a) for a in arguments]
    return "\n".join(lines).rstrip() + "\n"


def _usage(command: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(command.prog, width=100)
    formatter.add_usage(command.usage, command._actions, command._mutually_exclusive_groups,
                        prefix="")
    return formatter.format_help().strip()


def _argument_row(action: argparse.Action) -> str:
    name = ", ".join(f"`{o}`" for o in action.option_strings) or f"`{action.metavar or action.dest}`"
    if action.required and action.option_strings:
        name += "（必填）"
    default = action.default
    if isinstance(default, Path):      # machine-independent: the repository's own file name
        default = default.name
    shown = "" if default in (None, False, argparse.SUPPRESS) or not action.option_strings \
        else f"`{default}`"
    choices = " ".join(f"`{c}`" for c in action.choices) if action.choices else ""
    text = (action.help or "").replace("|", "\\|")
    return f"| {name} | {text} | {shown} | {choices} |"


def write_reference() -> None:
    REFERENCE.parent.mkdir(exist_ok=True)
    REFERENCE.write_text(reference_markdown(), encoding="utf-8")


def _report_leftovers(args: argparse.Namespace) -> None:
    """Partial copies an interrupted restore or build left are removed and said so; the safety
    copies a restore keeps are named only by `waves` and `restore`, not by every command."""
    from pipelines.store.leftovers import clean_leftovers

    if getattr(args, "db", None) is None:
        return
    found = clean_leftovers(args.db)
    if not found.removed and args.command not in ("waves", "restore"):
        return
    if notice := found.notice():
        print(notice, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    keep_freed_memory()
    _report_leftovers(args)
    try:
        return _COMMANDS[args.command](args)
    except (IngestError, DefinitionError, WarehouseError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head`: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("已中断，数据仓库未做更改。", file=sys.stderr)
        return 130
    except Exception as exc:  # last resort: never a traceback for the user
        print(f"程序内部错误（{type(exc).__name__}：{exc}）。数据仓库未做更改；"
              "请把这条信息发给维护人员。", file=sys.stderr)
        return 3


def _sample(args: argparse.Namespace) -> int:
    from pipelines.synth.sample import SAMPLE_DIR, SEED, generate

    written = generate(args.out or SAMPLE_DIR, args.seed if args.seed is not None else SEED)
    print(f"已生成示例省份数据：{len(written)} 个文件，位于 {written[0].parent}")
    return 0


def _build(args: argparse.Namespace) -> int:
    from pipelines.ingest.build import build_warehouse
    from pipelines.synth.sample import SAMPLE_DIR

    result = build_warehouse(args.db, args.source or SAMPLE_DIR, progress=sys.stderr.isatty())
    if result.built:
        print(f"已构建数据仓库 {result.path}：{result.waves} 期，用时 {result.seconds:.1f} 秒")
        _warm(args.db)
    else:
        print(f"数据仓库 {result.path} 已存在（{result.waves} 期），未重新构建")
    return 0


def _warm(db: Path, wh: Warehouse | None = None) -> None:
    """Score the latest wave and its risk table now, so the dashboard's first page is instant (after
    a build or an ingest). A wave that cannot be scored yet is reported, not an error: the data are
    in, and the dashboard will say what is missing."""
    import time

    from pipelines.results import cache as result_cache

    started = time.perf_counter()
    with (_open(db, read_only=True) if wh is None else contextlib.nullcontext(wh)) as opened:
        try:
            wave = result_cache.warm_latest(Path(db), opened, load_definitions())
        except Exception as exc:  # optional work after the data are safely in: never fail for it
            print(f"提示：暂未预先计算最新一期的得分与风险（{exc}）；看板首次打开时再计算。",
                  file=sys.stderr)
            return
    if wave is not None:
        print(f"已预先计算{wave_display(wave)}的得分与风险（{time.perf_counter() - started:.1f} 秒）")


def _ingest(args: argparse.Namespace) -> int:
    from pipelines.ingest.load import ingest_file
    from pipelines.ingest.sheets import LayoutChoice
    from pipelines.ingest.validation import Confirmations

    defs = load_definitions()
    confirmed = Confirmations(equal_weights=args.equal_weights,
                              allow_missing_counties=args.allow_missing_counties,
                              allow_repeat=args.allow_repeat)
    layout = LayoutChoice(tuple(args.sheet), args.header_row)
    with _open(args.db) as wh:
        result = ingest_file(wh, defs, args.file, args.wave, args.kind, replace=args.replace,
                             progress=sys.stderr.isatty(), confirmed=confirmed, layout=layout)
        for warning in result.warnings:
            print(f"提示：{warning}", file=sys.stderr)
        print(result.summary(), flush=True)
        if result.status != "unchanged":
            _warm(args.db, wh)
    return 0


def _decisions(args: argparse.Namespace) -> int:
    from pipelines.ingest.decisions import read_decisions
    from pipelines.store.warehouse import current_user

    data = args.file.read_bytes()
    with _open(args.db) as wh:
        rows = read_decisions(data, args.file.name, wh.counties())
        count = wh.record_decisions(rows, current_user(), args.file.name)
    print(f"已导入正式决定 {count} 条（{args.file.name}）")
    return 0


def _waves(args: argparse.Namespace) -> int:
    with _open(args.db, read_only=True) as wh:
        waves = wh.waves()
    if waves.height == 0:
        print("数据仓库中还没有任何期次。")
        return 0
    print(f"{'期次':<8}{'名称':<12}{'受访者':>8}{'区县':>6}{'指标值':>8}")
    for row in waves.iter_rows(named=True):
        print(f"{row['wave']:<10}{wave_display(row['wave']):<10}{row['respondents']:>10}"
              f"{row['counties']:>8}{row['indicator_values']:>10}")
    return 0


def _loads(args: argparse.Namespace) -> int:
    with _open(args.db, read_only=True) as wh:
        loads = wh.loads(args.wave)
    status = {"active": "使用中", "superseded": "已被替换", "rolled_back": "已撤回"}
    for row in loads.iter_rows(named=True):
        print(f"#{row['load_id']:<4} {row['wave']:<8} {row['kind']:<11} {status[row['status']]:<6} "
              f"{row['n_rows']:>7}行  {row['source_name']}  sha256:{row['source_sha256'][:12]}  "
              f"{row['loaded_by']}  {beijing_text(row['loaded_at'])}（北京时间）")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    with _open(args.db) as wh:
        load_id = wh.rollback_wave(args.wave, args.kind)
    print(f"已将{wave_display(args.wave)}恢复为导入编号 {load_id} 的版本")
    return 0


def _withdraw(args: argparse.Namespace) -> int:
    with _open(args.db) as wh:
        load_id = wh.withdraw_wave(args.wave, args.kind, reason=args.reason)
    print(f"已撤回{wave_display(args.wave)}的{'调查数据' if args.kind == 'survey' else '工作指标表'}"
          f"（导入编号 {load_id}，仍保留在导入记录中；重新导入即可再次发布）")
    return 0


def _release(args: argparse.Namespace) -> int:
    from pipelines.results.release import release_wave
    from pipelines.store.warehouse import current_user

    with _open(args.db) as wh:
        release_id = release_wave(wh, load_definitions(), args.wave, args.by or current_user())
    print(f"已对领导发布{wave_display(args.wave)}（发布编号 {release_id}）：查看者从现在起可以看到该期结果")
    return 0


def _score(args: argparse.Namespace) -> int:
    from pipelines.exports.report import score_table, write_table

    defs = load_definitions(scheme_file=args.scheme)
    with _open(args.db, read_only=True) as wh:
        table, labels = score_table(wh, defs, args.wave)
    write_table(table, labels, args.format, sys.stdout,
                title=f"{wave_display(args.wave)}各区县综合得分"
                      f"（{defs.scheme.confidence_level:.0%} 置信区间）")
    return 0


def _risk(args: argparse.Namespace) -> int:
    from pipelines.exports.report import RISK_LABELS, write_table
    from pipelines.ranking.risk import risk_table
    from pipelines.results.wave import scored_history

    if args.draws < 1000:
        print("参数有误：--draws 至少为 1000", file=sys.stderr)
        return 2
    defs = load_definitions()
    with _open(args.db, read_only=True) as wh:
        table = risk_table(scored_history(wh, defs, args.wave), defs, draws=args.draws)
    write_table(table.sort("score", nulls_last=True), RISK_LABELS, args.format, sys.stdout,
                title=f"{wave_display(args.wave)}挂牌风险：本期 = 真实水平是否在后3/后10名；"
                      "下期 = 下一期公布排名落入后3/后10名的概率", shown=RISK_SHOWN)
    return 0


RISK_SHOWN = ("county_name", "score", "rank", "rank_low", "rank_high", "p_bottom3", "p_bottom10",
              "p_bottom3_next", "p_bottom10_next", "band")


def _listing(args: argparse.Namespace) -> int:
    import polars as pl

    from pipelines.exports.report import LISTING_LABELS, listing_table, write_table
    from pipelines.ranking.forecast import history_of, next_wave_probabilities
    from pipelines.ranking.risk import delisting_progress
    from pipelines.results.wave import listing_result, scored_history

    defs = load_definitions(scheme_file=args.scheme)
    with _open(args.db, read_only=True) as wh:
        history = scored_history(wh, defs, args.wave)
        result = listing_result(wh, defs, history)
        table = listing_table(result, wh.counties(), args.wave)
        counties = wh.counties()
    write_table(table, LISTING_LABELS, args.format, sys.stdout,
                title=f"截至{wave_display(args.wave)}的挂牌、通报与记零（规则判定与正式决定对照）",
                shown=("county_name", "wave", "level", "action", "status", "deadline", "reason",
                       "official"))
    if args.format == "table":
        # progress needs only the next-wave bottom-10 chance, not the whole risk table
        rules = defs.scheme.listing
        bottoms = (rules.province_bottom, rules.city_bottom)
        chances = next_wave_probabilities(history_of(history), draws=4000,
                                          seed=defs.scheme.estimation.seed + 1, bottoms=bottoms)
        next_wave = pl.DataFrame({"county_code": history[-1].composite["county_code"],
                                  "p_bottom10_next": chances[rules.city_bottom]})
        progress = delisting_progress(result, next_wave, args.wave) \
            .join(counties.select("county_code", "county_name"), on="county_code", how="left")
        print()
        write_table(progress, LISTING_LABELS | PROGRESS_LABELS, "table", sys.stdout,
                    title="当前挂牌县的摘帽进度",
                    shown=("county_name", "listed_in", "conditions_met", "conditions", "missing",
                           "p_bottom10_next", "expected_exit"))
    return 0


PROGRESS_LABELS = {"listed_in": "挂牌期次", "conditions_met": "已满足", "conditions": "条件数",
                   "missing": "未满足条件", "p_bottom10_next": "下期后10概率",
                   "expected_exit": "预计摘帽"}


def _plan(args: argparse.Namespace) -> int:
    import json

    from pipelines.exports.report import write_table
    from pipelines.present.plan_views import (
        PLAN_LABELS,
        SUMMARY_LABELS,
        floor_note,
        parse_fixed,
        plan_view,
        weighting_note,
    )
    from pipelines.ranking.plan import PlanError, PlanSettings, plan_for_scores
    from pipelines.results.wave import scored_history

    defs = load_definitions()
    lines = (defs.scheme.listing.province_bottom, defs.scheme.listing.city_bottom)
    try:
        weights = [float(w) for w in args.line_weights.split(",")]
        fixed = parse_fixed(args.fixed)
    except ValueError:
        print("参数有误：--line-weights 应为两个数（如 1,1），--fixed 应为 代码=样本量",
              file=sys.stderr)
        return 2
    if len(weights) != len(lines) or min(weights) < 0 or sum(weights) <= 0:
        print("参数有误：--line-weights 应为两个非负数，且不全为 0", file=sys.stderr)
        return 2
    settings = PlanSettings(total=args.total, min_per_county=args.min_per_county,
                            max_per_county=args.max_per_county, fixed=fixed,
                            weights=dict(zip(lines, weights, strict=True)),
                            seed=defs.scheme.estimation.seed)
    with _open(args.db, read_only=True) as wh:
        history = scored_history(wh, defs, args.wave)
        counties = wh.counties()
    try:
        plan = plan_for_scores(history, counties, settings)
    except PlanError as exc:
        print(f"参数有误：{exc}", file=sys.stderr)
        return 2
    view = plan_view(plan, counties)
    summary = plan.summary.select("allocation", *SUMMARY_LABELS)
    if args.format == "json":
        json.dump({"counties": view.to_dicts(), "summary": summary.to_dicts()}, sys.stdout,
                  ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
        return 0
    write_table(view, PLAN_LABELS, args.format, sys.stdout,
                title=f"依据截至{wave_display(args.wave)}的数据，下一期抽样方案（总样本量 {args.total}）",
                shown=tuple(PLAN_LABELS))
    if args.format == "table":
        print()
        write_table(summary, SUMMARY_LABELS, "table", sys.stdout,
                    title="预计错判区县数（公布名次与真实水平分处后"
                          f"{lines[0]}名/后{lines[1]}名分界线两侧的区县数，同一总样本量）"
                          + weighting_note(plan),
                    shown=tuple(SUMMARY_LABELS))
        print(f"抽样误差中调查部分约占 {plan.survey_share:.0%}（各县中位数），其余为计数指标的泊松误差，"
              "样本量不能缩小它。")
        print(floor_note(plan))
    return 0


def _backup(args: argparse.Namespace) -> int:
    from pipelines.store.accounts import Accounts, users_path
    from pipelines.store.backup import backup

    summary = backup(args.db, args.out)
    print(f"已备份到 {summary.path}：{summary.waves} 期、{summary.loads} 次导入；"
          f"SHA-256 {summary.sha256}")
    if copied := Accounts(users_path(args.db)).backup_to(users_path(Path(args.out), override=False)):
        print(f"账户文件已备份到 {copied}")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from pipelines.store.backup import restore

    summary, kept = restore(args.backup_file, args.db)
    print(f"已由 {args.backup_file} 恢复数据仓库 {args.db}：{summary.waves} 期、{summary.loads} 次导入。")
    if kept is not None:
        print(f"恢复前的数据仓库已另存为 {kept}")
    return 0


def _audit_log(args: argparse.Namespace) -> int:
    from pipelines.exports.report import write_table

    with _open(args.db, read_only=True) as wh:
        log = wh.audit_log()
    log = log.with_columns(beijing_expr("at"))
    labels = {"at": "时间（北京时间）", "by_user": "操作人", "action": "操作", "wave": "期次",
              "detail": "内容", "sha256": "文件SHA-256"}
    write_table(log, labels, args.format, sys.stdout, title="数据变更记录（新的在前）")
    return 0


def _scaled(args: argparse.Namespace) -> int:
    import time

    from pipelines.synth.scaled import SCALES, generate_scaled

    counties, per_county, waves = SCALES[args.scale]
    started = time.perf_counter()
    generate_scaled(args.out, counties, per_county, waves)
    print(f"已在 {args.out} 生成 {counties} 个县 × 每县约 {per_county} 人 × {waves} 期的合成数据"
          f"（{time.perf_counter() - started:.0f} 秒）。构建：python -m pipelines build --db 文件 "
          f"--source {args.out}")
    return 0


def _export(args: argparse.Namespace) -> int:
    import time

    from pipelines.exports.deck import build_deck
    from pipelines.exports.pack import meeting_pack, meeting_tables, workbook_note
    from pipelines.exports.workbook import workbook_bytes

    if args.pptx is None and args.xlsx is None:
        print("参数有误：至少给出 --pptx 或 --xlsx 之一", file=sys.stderr)
        return 2
    if args.draws < 1000:
        print("参数有误：--draws 至少为 1000", file=sys.stderr)
        return 2
    for out, suffix in ((args.pptx, ".pptx"), (args.xlsx, ".xlsx")):
        if out is not None and out.suffix.lower() != suffix:
            print(f"参数有误：输出文件 {out} 的扩展名应为 {suffix}", file=sys.stderr)
            return 2
        if out is not None and not out.parent.exists():
            print(f"输出目录 {out.parent} 不存在", file=sys.stderr)
            return 1
    defs = load_definitions()
    with _open(args.db, read_only=True) as wh:
        started = time.perf_counter()
        pack = meeting_pack(wh, defs, args.wave, args.city, draws=args.draws)
    if args.pptx is not None:
        _write_atomically(args.pptx, build_deck(pack))
        print(f"已生成会议材料 {args.pptx}")
    if args.xlsx is not None:
        _write_atomically(args.xlsx, workbook_bytes(meeting_tables(pack), note=workbook_note(pack)))
        print(f"已生成表格 {args.xlsx}")
    print(f"用时 {time.perf_counter() - started:.1f} 秒")
    return 0


def _write_atomically(path: Path, data: bytes) -> None:
    """Write beside the target and rename: a reader never sees half a file."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    partial.replace(path)


def _set_password(args: argparse.Namespace) -> int:
    import getpass

    from pipelines.present.access import write_password_hash

    first = getpass.getpass("新的分析人员密码：")
    if len(first) < 8:
        print("密码至少 8 个字符。", file=sys.stderr)
        return 2
    if getpass.getpass("再输入一次：") != first:
        print("两次输入不一致，未做更改。", file=sys.stderr)
        return 2
    path = write_password_hash(first)
    print(f"已保存密码哈希到 {path}（不要提交到版本库）。重启看板后生效。")
    return 0


def _users(args: argparse.Namespace) -> int:
    """Account administration from the server's shell (recorded as 命令行:<login name>)."""
    import getpass

    from pipelines.store.accounts import ROLES, AccountError, Accounts, users_path

    store = Accounts(users_path(args.db))
    by = f"命令行:{getpass.getuser()}"
    if args.action == "list":
        for account in store.list():
            print(f"{account.name}\t{account.role_label}\t{account.city_code or '全省'}\t"
                  f"{'已停用' if account.disabled else '正常'}")
        return 0
    if not args.name:
        print("请给出用户名。", file=sys.stderr)
        return 2
    try:
        if args.action in ("add", "reset"):
            if args.password_stdin:
                password = sys.stdin.readline().rstrip("\n")
            else:
                password = getpass.getpass(f"{args.name} 的密码：")
                if getpass.getpass("再输入一次：") != password:
                    print("两次输入不一致，未做更改。", file=sys.stderr)
                    return 2
            if args.action == "add":
                store.add(args.name, password, args.role, args.city, by=by)
                print(f"已新建用户 {args.name}（{ROLES[args.role]}）；账户文件 {store.path}")
            else:
                store.reset_password(args.name, password, by=by)
                print(f"已重设 {args.name} 的密码，其已登录的会话已结束。")
        else:
            store.set_disabled(args.name, args.action == "disable", by=by)
            print(f"已{'停用' if args.action == 'disable' else '启用'}用户 {args.name}。")
    except AccountError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


def _open(db: Path, read_only: bool = False) -> Warehouse:
    if not Path(db).exists():
        raise WarehouseError(f"数据仓库 {db} 不存在：请先运行 python -m pipelines build --db {db}")
    return Warehouse.open(db, read_only=read_only)


_COMMANDS = {"sample": _sample, "build": _build, "ingest": _ingest, "decisions": _decisions,
             "waves": _waves, "loads": _loads, "rollback": _rollback, "withdraw": _withdraw,
             "release": _release, "score": _score,
             "risk": _risk, "listing": _listing, "plan": _plan, "export": _export, "scaled": _scaled,
             "backup": _backup, "restore": _restore, "audit": _audit_log, "set-password": _set_password,
             "users": _users}
