"""The visual report: one self-contained HTML file of the segments, drawn from the serving file.

Command line (from the project folder; `make report`)::

    python -m customer_segmentation.report [--serving PATH] [--output FILE]

It reads the serving file (`SERVING_DUCKDB_PATH`, default `warehouse/serving.duckdb`) through
the safe read-only connection, draws each chart with Plotly, and writes one HTML file (default
`report/customer_segments.html`) with plotly.js inlined once: it opens in any browser with no
network. Each chart sits in a container with a stable id (`chart-monthly-revenue`, ...), which
the browser test checks is drawn. A chart whose mart is missing from the serving file (an older
build) is replaced by a message that names the table, so the rest of the report still renders.

The output depends only on the serving file: the same build gives the same bytes.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from customer_segmentation.serving import connect_readonly, serving_path

DEFAULT_OUTPUT = "report/customer_segments.html"
SCHEMA = "marts"
TEMPLATE = "plotly_white"
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


class MissingData(LookupError):
    """A chart cannot be drawn: a table or column it needs is not in the serving file."""


@dataclass(frozen=True)
class Chart:
    """One section of the report: a stable container id, its title and how to draw it.

    `tables` are needed (the section becomes a message without them); `optional` tables are
    passed to `draw` when the serving file has them, and the chart is drawn either way.
    """

    chart_id: str
    title: str
    question: str
    tables: tuple[str, ...]
    draw: Callable[[dict[str, pd.DataFrame]], go.Figure]
    wide: bool = False
    optional: tuple[str, ...] = ()


def column(frame: pd.DataFrame, table: str, name: str) -> pd.Series:
    """One column of a mart; `MissingData` names it when an older build lacks it."""
    if name not in frame.columns:
        raise MissingData(f"{SCHEMA}.{table} has no column {name}")
    return frame[name]


def sorted_by(frame: pd.DataFrame, table: str, name: str) -> pd.DataFrame:
    """A mart in the order of one of its columns (stable, so the output is deterministic)."""
    column(frame, table, name)
    return frame.sort_values(name, kind="stable").reset_index(drop=True)


def first_row(frame: pd.DataFrame, table: str) -> pd.Series:
    """The only row of a one-row mart."""
    if frame.empty:
        raise MissingData(f"{SCHEMA}.{table} is empty")
    return frame.iloc[0]


def _layout(fig: go.Figure, height: int = 420, **kwargs: object) -> go.Figure:
    """The report's common look; `kwargs` override the defaults."""
    settings: dict[str, object] = {
        "template": TEMPLATE,
        "height": height,
        "margin": {"l": 60, "r": 30, "t": 40, "b": 50},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        "font": {"family": "Helvetica, Arial, sans-serif", "size": 12},
    }
    settings.update(kwargs)
    fig.update_layout(**settings)
    return fig


def _table_trace(
    frame: pd.DataFrame, table: str, spec: Sequence[tuple[str, str, str]], fill: str
) -> go.Table:
    """A Plotly table of `(header, column, format)` columns of a mart."""
    return go.Table(
        header={
            "values": [f"<b>{header}</b>" for header, _, _ in spec],
            "fill_color": fill,
            "font": {"color": "white"},
            "align": "left",
        },
        cells={
            "values": [[_fmt(fmt, v) for v in column(frame, table, name)] for _, name, fmt in spec],
            "align": "left",
            "height": 26,
        },
    )


def _fmt(fmt: str, value: object) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    try:
        return fmt.format(value)
    except (TypeError, ValueError):
        return str(value)


def _monthly(data: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.Series, list[str]]:
    """monthly_kpis in month order, its months, and a bar colour that marks partial months."""
    kpis = sorted_by(data["monthly_kpis"], "monthly_kpis", "month")
    month = pd.to_datetime(column(kpis, "monthly_kpis", "month"))
    partial = column(kpis, "monthly_kpis", "is_partial_month").fillna(False).astype(bool)
    return kpis, month, ["#9DB9D3" if p else "#4C78A8" for p in partial]


def draw_monthly_revenue(data: dict[str, pd.DataFrame]) -> go.Figure:
    """Revenue per month (bars; light when the data covers only part of the month) with the
    active customers (line, right axis)."""
    kpis, month, colours = _monthly(data)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Bar(
            x=month,
            y=column(kpis, "monthly_kpis", "revenue").astype(float),
            name="Revenue (GBP; light: partial month)",
            marker_color=colours,
            hovertemplate="%{x|%b %Y}: £%{y:,.0f}<extra></extra>",
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=month,
            y=column(kpis, "monthly_kpis", "active_customers"),
            name="Active customers",
            mode="lines+markers",
            line={"color": "#F58518", "width": 3},
        ),
        secondary_y=True,
    )
    fig.update_yaxes(title_text="Revenue (GBP)", tickprefix="£", secondary_y=False)
    fig.update_yaxes(title_text="Active customers", secondary_y=True, showgrid=False)
    return _layout(fig, xaxis={"dtick": "M1", "tickformat": "%b\n%Y"})


def draw_new_customer_ratio(data: dict[str, pd.DataFrame]) -> go.Figure:
    """New customers per month (bars) and their share of the active customers (line)."""
    kpis, month, _ = _monthly(data)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Bar(
            x=month,
            y=column(kpis, "monthly_kpis", "new_customers"),
            name="New customers",
            marker_color="#54A24B",
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=month,
            y=column(kpis, "monthly_kpis", "new_customer_ratio"),
            name="New / active customers",
            mode="lines+markers",
            line={"color": "#E45756", "width": 3},
            hovertemplate="%{x|%b %Y}: %{y:.1%}<extra></extra>",
        ),
        secondary_y=True,
    )
    fig.update_yaxes(title_text="New customers", secondary_y=False)
    fig.update_yaxes(
        title_text="Share of active customers",
        tickformat=".0%",
        rangemode="tozero",
        secondary_y=True,
        showgrid=False,
    )
    return _layout(fig, xaxis={"dtick": "M2", "tickformat": "%b\n%Y"})


def draw_weekday_hour(data: dict[str, pd.DataFrame]) -> go.Figure:
    """Revenue by ISO weekday and hour of day; hours with no sale are blank."""
    sales, table = data["sales_by_weekday_hour"], "sales_by_weekday_hour"
    frame = pd.DataFrame(
        {
            "weekday": column(sales, table, "iso_weekday").astype(int),
            "hour": column(sales, table, "hour_of_day").astype(int),
            "revenue": column(sales, table, "revenue").astype(float),
        }
    )
    hours = range(int(frame["hour"].min()), int(frame["hour"].max()) + 1) if len(frame) else []
    grid = frame.pivot_table(index="weekday", columns="hour", values="revenue", aggfunc="sum")
    grid = grid.reindex(index=range(1, 8), columns=hours)
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=[f"{h:02d}h" for h in grid.columns],
            y=WEEKDAYS,
            colorscale="YlOrRd",
            colorbar={"title": "Revenue", "tickprefix": "£"},
            hoverongaps=False,
            hovertemplate="%{y} %{x}: £%{z:,.0f}<extra></extra>",
        )
    )
    return _layout(
        fig,
        height=380,
        xaxis={"title": "Hour of day", "type": "category"},
        yaxis={"autorange": "reversed", "type": "category"},
    )


def draw_cohort_retention(data: dict[str, pd.DataFrame]) -> go.Figure:
    """Share of each monthly cohort active again 0, 1, 2, ... months after its first purchase."""
    cohorts, table = data["cohort_retention"], "cohort_retention"
    frame = pd.DataFrame(
        {
            "cohort": pd.to_datetime(column(cohorts, table, "cohort_month")).dt.strftime("%Y-%m"),
            "offset": column(cohorts, table, "months_since").astype(int),
            "rate": column(cohorts, table, "retention_rate").astype(float),
            "size": column(cohorts, table, "cohort_size").astype(int),
        }
    )
    grid = frame.pivot_table(index="cohort", columns="offset", values="rate", aggfunc="first")
    grid = grid.sort_index().sort_index(axis=1)
    sizes = frame.groupby("cohort")["size"].first().reindex(grid.index)
    labels = [f"{cohort} ({size:,})" for cohort, size in sizes.items()]
    text = grid.map(lambda v: "" if pd.isna(v) else f"{v:.0%}")
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=[int(c) for c in grid.columns],
            y=labels,
            text=text.to_numpy(),
            texttemplate="%{text}",
            textfont={"size": 9},
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar={"title": "Active", "tickformat": ".0%"},
            hoverongaps=False,
            hovertemplate="cohort %{y}, month +%{x}: %{z:.1%} active<extra></extra>",
        )
    )
    return _layout(
        fig,
        height=max(360, 40 + 26 * len(labels)),
        xaxis={"title": "Months since first purchase", "dtick": 1, "side": "top"},
        yaxis={"title": "Cohort (customers)", "autorange": "reversed", "type": "category"},
        margin={"l": 110, "r": 30, "t": 60, "b": 20},
    )


def draw_rfm_treemap(data: dict[str, pd.DataFrame]) -> go.Figure:
    """RFM segments sized by customers, coloured by their share of revenue."""
    summary, table = data["rfm_segment_summary"], "rfm_segment_summary"
    summary = sorted_by(summary, table, "segment_order")
    customer_share = column(summary, table, "customer_share").astype(float)
    revenue_share = column(summary, table, "revenue_share").astype(float)
    fig = go.Figure(
        go.Treemap(
            labels=column(summary, table, "rfm_segment"),
            parents=[""] * len(summary),
            values=column(summary, table, "customers"),
            customdata=list(zip(customer_share, revenue_share, strict=True)),
            marker={
                "colors": revenue_share,
                "colorscale": "Tealgrn",
                "colorbar": {"title": "Share of<br>revenue", "tickformat": ".0%"},
            },
            texttemplate=(
                "<b>%{label}</b><br>%{value:,} customers<br>%{customdata[1]:.0%} of revenue"
            ),
            hovertemplate=(
                "%{label}: %{value:,} customers (%{customdata[0]:.1%}), "
                "%{customdata[1]:.1%} of revenue<extra></extra>"
            ),
            pathbar={"visible": False},
            sort=True,
        )
    )
    return _layout(fig, height=460, margin={"l": 10, "r": 10, "t": 10, "b": 10})


def draw_model_selection(data: dict[str, pd.DataFrame]) -> go.Figure:
    """Inertia (elbow) and silhouette over k for KMeans, with the silhouettes of a Gaussian
    mixture and of agglomerative clustering for comparison, and the chosen k marked."""
    table = "segment_model_selection"
    selection = sorted_by(data[table], table, "k")
    k = column(selection, table, "k").astype(int)
    chosen = column(selection, table, "is_selected").fillna(False).astype(bool)
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("Inertia (elbow)", "Silhouette score"),
        horizontal_spacing=0.12,
    )
    inertia = column(selection, table, "inertia").astype(float)
    fig.add_trace(
        go.Scatter(x=k, y=inertia, mode="lines+markers", name="KMeans inertia"), row=1, col=1
    )
    silhouette = column(selection, table, "silhouette").astype(float)
    for name, label, dash in (
        ("silhouette", "KMeans silhouette", "solid"),
        ("gmm_silhouette", "Gaussian mixture silhouette", "dot"),
        ("agglomerative_silhouette", "Agglomerative silhouette", "dash"),
    ):
        fig.add_trace(
            go.Scatter(
                x=k,
                y=column(selection, table, name).astype(float),
                mode="lines+markers",
                name=label,
                line={"dash": dash},
            ),
            row=1,
            col=2,
        )
    if chosen.any():
        best = int(k[chosen].iloc[0])
        for col, values in ((1, inertia), (2, silhouette)):
            fig.add_vline(x=best, line_dash="dash", line_color="#888", row=1, col=col)
            fig.add_trace(
                go.Scatter(
                    x=[best],
                    y=[float(values[chosen].iloc[0])],
                    mode="markers",
                    marker={"symbol": "star", "size": 18, "color": "#E45756"},
                    name=f"chosen k = {best}",
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
        rule = str(column(selection, table, "selection_rule")[chosen].iloc[0])
        fig.add_annotation(
            text=html.escape(textwrap.shorten(rule, 160)),
            xref="paper",
            yref="paper",
            x=0,
            y=-0.3,
            showarrow=False,
            align="left",
            font={"size": 11, "color": "#555"},
        )
    fig.update_xaxes(title_text="k (number of segments)", dtick=1)
    return _layout(
        fig,
        height=440,
        margin={"l": 60, "r": 30, "t": 90, "b": 100},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.12, "x": 0},
    )


PROFILE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("Segment", "segment_name", "{}"),
    ("Customers", "customers", "{:,.0f}"),
    ("Share of customers", "share_of_customers", "{:.1%}"),
    ("Revenue (GBP)", "revenue", "£{:,.0f}"),
    ("Share of revenue", "share_of_revenue", "{:.1%}"),
    ("Recency (days, mean)", "mean_recency_days", "{:,.0f}"),
    ("Orders (mean)", "mean_frequency", "{:,.1f}"),
    ("Spend (GBP, mean)", "mean_monetary", "£{:,.0f}"),
    ("Order value (GBP, mean)", "mean_avg_order_value", "£{:,.0f}"),
    ("Products (mean)", "mean_distinct_products", "{:,.0f}"),
    ("Returned (GBP, mean)", "mean_returned_amount", "£{:,.0f}"),
    ("Silhouette", "mean_silhouette", "{:.2f}"),
)


def draw_segment_profiles(data: dict[str, pd.DataFrame]) -> go.Figure:
    """Each KMeans segment's share of customers and of revenue, and its profile in original
    units (means over its customers)."""
    table = "segment_profiles"
    profiles = sorted_by(data[table], table, "segment_id")
    names = column(profiles, table, "segment_name").astype(str)
    fig = make_subplots(
        rows=2,
        cols=1,
        row_heights=[0.5, 0.5],
        vertical_spacing=0.1,
        specs=[[{"type": "xy"}], [{"type": "table"}]],
    )
    for name, label, colour in (
        ("share_of_customers", "Share of customers", "#4C78A8"),
        ("share_of_revenue", "Share of revenue", "#F58518"),
    ):
        fig.add_trace(
            go.Bar(
                x=names,
                y=column(profiles, table, name).astype(float),
                name=label,
                marker_color=colour,
                text=[f"{v:.0%}" for v in column(profiles, table, name).astype(float)],
                textposition="outside",
            ),
            row=1,
            col=1,
        )
    fig.update_yaxes(tickformat=".0%", rangemode="tozero", row=1, col=1)
    fig.add_trace(_table_trace(profiles, table, PROFILE_COLUMNS, "#4C78A8"), row=2, col=1)
    return _layout(fig, height=600, barmode="group")


#: Products drawn per segment and in the starter list, whatever `top_products_n` is: past ten,
#: a segment's bars stop being readable.
SHOWN_PRODUCTS = 10
#: Characters of a product description kept on an axis or in a table cell; the hover has it all.
LABEL_CHARS = 34
#: Products named per RFM segment in the playbook.
PLAYBOOK_PRODUCTS = 3


def _one_line(value: object) -> str:
    """A value as one line of text (runs of white space made one space)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return " ".join(str(value).split())


def _text(value: object) -> str:
    """A value as one line of text, escaped for Plotly's HTML-like labels."""
    return html.escape(_one_line(value), quote=False)


def _short(value: object, width: int = LABEL_CHARS) -> str:
    """A product description cut to `width` characters with an ellipsis, escaped."""
    text = _one_line(value)
    if len(text) > width:
        text = text[: width - 1].rstrip() + "\u2026"
    return html.escape(text, quote=False)


def _product_names(frame: pd.DataFrame, table: str) -> pd.Series:
    """Each row's product description, or its stock code where the product has none."""
    description = column(frame, table, "description")
    stock_code = column(frame, table, "stock_code").astype(str)
    named = description.fillna("").astype(str).str.strip() != ""
    return description.where(named, stock_code).astype(str)


def _top_products(data: dict[str, pd.DataFrame], kind: str, shown: int) -> pd.DataFrame:
    """The rows of segment_top_products of one segment_kind, at most `shown` per segment, in
    segment and rank order."""
    table = "segment_top_products"
    frame = data[table]
    frame = frame[column(frame, table, "segment_kind") == kind]
    frame = frame[column(frame, table, "rank").astype(int) <= shown]
    return frame.sort_values(["segment", "rank"], kind="stable").reset_index(drop=True)


def draw_segment_top_products(data: dict[str, pd.DataFrame]) -> go.Figure:
    """Each KMeans segment's top products by customers buying (segments in segment_profiles
    order, with their persona names): bars of the share of the segment's customers who bought
    the product, dark where the lift is at least 1, labelled with the share and the lift."""
    table, profiles_table = "segment_top_products", "segment_profiles"
    profiles = sorted_by(data[profiles_table], profiles_table, "segment_id")
    segment_ids = column(profiles, profiles_table, "segment_id").astype(int).tolist()
    names = column(profiles, profiles_table, "segment_name").astype(str).tolist()
    sizes = column(profiles, profiles_table, "customers").astype(int).tolist()
    top = _top_products(data, "kmeans", SHOWN_PRODUCTS)
    top_ids = column(top, table, "segment_id")
    shares = column(top, table, "share_of_segment_customers").astype(float)
    if not segment_ids:
        raise MissingData(f"{SCHEMA}.{profiles_table} is empty")
    cols = 1 if len(segment_ids) == 1 else 2
    rows = -(-len(segment_ids) // cols)
    bars = max(1, int(top.groupby("segment")["rank"].count().max()) if len(top) else 1)
    panel, gap = 40 + 24 * bars, 70
    height = rows * panel + (rows - 1) * gap + 110
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[
            _text(f"{sid} \u00b7 {name} ({size:,} customers)")
            for sid, name, size in zip(segment_ids, names, sizes, strict=True)
        ],
        horizontal_spacing=0.24 if cols > 1 else 0.1,
        vertical_spacing=gap / (height - 110) if rows > 1 else 0.0,
    )
    x_max = max(float(shares.max()) if len(shares) else 0.0, 0.01) * 1.45
    shown_legend: set[bool] = set()
    for i, segment_id in enumerate(segment_ids):
        row, col = i // cols + 1, i % cols + 1
        rows_of = top[top_ids.astype("Int64") == segment_id].reset_index(drop=True)
        if rows_of.empty:
            axes = fig.get_subplot(row, col)
            fig.add_annotation(
                text="No purchases before the reference date",
                xref=f"{axes.yaxis.anchor} domain",
                yref=f"{axes.xaxis.anchor} domain",
                x=0.5,
                y=0.5,
                showarrow=False,
                font={"color": "#888"},
            )
        labels = _product_names(rows_of, table)
        rank = column(rows_of, table, "rank").astype(int)
        share = column(rows_of, table, "share_of_segment_customers").astype(float)
        lift = column(rows_of, table, "lift").astype(float)
        above = lift >= 1
        for is_above in (True, False):
            pick = above == is_above
            if not pick.any():
                continue
            fig.add_trace(
                go.Bar(
                    x=share[pick],
                    y=rank[pick],
                    orientation="h",
                    name="Lift \u2265 1: bought more than by customers at large"
                    if is_above
                    else "Lift < 1: bought less than by customers at large",
                    legendgroup=str(is_above),
                    showlegend=is_above not in shown_legend,
                    marker_color="#4C78A8" if is_above else "#9DB9D3",
                    text=[
                        f"{s:.0%} \u00b7 lift {v:.2f}"
                        for s, v in zip(share[pick], lift[pick], strict=True)
                    ],
                    textposition="outside",
                    cliponaxis=False,
                    customdata=list(
                        zip(
                            [_text(v) for v in labels[pick]],
                            [_text(v) for v in column(rows_of, table, "stock_code")[pick]],
                            column(rows_of, table, "customers_buying")[pick].astype(int),
                            column(rows_of, table, "segment_customers")[pick].astype(int),
                            lift[pick],
                            strict=True,
                        )
                    ),
                    hovertemplate=(
                        "%{customdata[0]} (%{customdata[1]}): %{customdata[2]:,} of "
                        "%{customdata[3]:,} customers (%{x:.1%}), lift %{customdata[4]:.2f}"
                        "<extra></extra>"
                    ),
                ),
                row=row,
                col=col,
            )
            shown_legend.add(is_above)
        fig.update_yaxes(
            tickvals=rank.tolist(),
            ticktext=[_short(v) for v in labels],
            range=[bars + 0.5, 0.5],
            row=row,
            col=col,
        )
    fig.update_xaxes(tickformat=".0%", range=[0, x_max], showgrid=True)
    fig.update_yaxes(showgrid=False, automargin=True)
    fig.update_annotations(font_size=13)
    return _layout(
        fig,
        height=height,
        bargap=0.25,
        margin={"l": 10, "r": 20, "t": 80, "b": 30},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1 + 60 / (height - 110), "x": 0},
    )


def draw_starter_products(data: dict[str, pd.DataFrame]) -> go.Figure:
    """The products of customers' first orders, by how many first orders hold them, and the
    share of those starters (observed for 90 days) who ordered again within 90 days."""
    table = "new_customer_starter_products"
    starters = sorted_by(data[table], table, "rank")
    starters = starters[column(starters, table, "rank").astype(int) <= SHOWN_PRODUCTS]
    if starters.empty:
        raise MissingData(f"{SCHEMA}.{table} is empty")
    labels = _product_names(starters, table)
    rank = column(starters, table, "rank").astype(int)
    share = column(starters, table, "share_of_first_orders").astype(float)
    first_orders = column(starters, table, "first_orders").astype(int)
    observed = column(starters, table, "first_orders_observed_90_days").astype(int)
    returned = column(starters, table, "returned_within_90_days").astype(float)
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.06,
        subplot_titles=(
            "Share of first orders that hold the product",
            "Of those starters, share who ordered again within 90 days",
        ),
    )
    stock_codes = column(starters, table, "stock_code").astype(str)
    hover = [f"{_text(v)} ({_text(code)})" for v, code in zip(labels, stock_codes, strict=True)]
    fig.add_trace(
        go.Bar(
            x=share,
            y=rank,
            orientation="h",
            name="Share of first orders",
            marker_color="#54A24B",
            text=[f"{s:.1%} ({n:,})" for s, n in zip(share, first_orders, strict=True)],
            textposition="outside",
            cliponaxis=False,
            customdata=list(zip(hover, first_orders, strict=True)),
            hovertemplate=(
                "%{customdata[0]}: in %{customdata[1]:,} first orders (%{x:.1%})<extra></extra>"
            ),
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(
            x=returned.fillna(0.0),
            y=rank,
            orientation="h",
            name="Ordered again within 90 days",
            marker_color="#F58518",
            text=[
                "not observable yet" if pd.isna(r) else f"{r:.0%} of {n:,}"
                for r, n in zip(returned, observed, strict=True)
            ],
            textposition="outside",
            cliponaxis=False,
            customdata=list(zip(hover, observed, strict=True)),
            hovertemplate=(
                "%{customdata[0]}: %{x:.0%} of the %{customdata[1]:,} starters observed for "
                "90 days ordered again within them<extra></extra>"
            ),
        ),
        row=1,
        col=2,
    )
    fig.update_yaxes(
        tickvals=rank.tolist(),
        ticktext=[_short(v) for v in labels],
        range=[len(rank) + 0.5, 0.5],
        automargin=True,
        row=1,
        col=1,
    )
    fig.update_xaxes(
        tickformat=".0%", range=[0, max(float(share.max()), 0.01) * 1.35], row=1, col=1
    )
    fig.update_xaxes(
        tickformat=".0%", range=[0, 1.3], tickvals=[0, 0.25, 0.5, 0.75, 1], row=1, col=2
    )
    fig.update_annotations(font_size=13)
    return _layout(
        fig,
        height=120 + 30 * len(rank),
        showlegend=False,
        bargap=0.3,
        margin={"l": 10, "r": 20, "t": 50, "b": 30},
    )


def draw_loyalty_programme(data: dict[str, pd.DataFrame]) -> go.Figure:
    """The loyalty programme at a glance: members, their share of customers and of revenue,
    and what a member spends, with the eligibility rule."""
    table = "loyalty_programme_summary"
    row = first_row(data[table], table)
    tiles = [
        ("Members", column(data[table], table, "members").iloc[0], ",.0f", ""),
        ("Share of customers", row.get("share_of_customers"), ".1%", ""),
        ("Share of revenue", row.get("share_of_revenue"), ".1%", ""),
        ("Mean spend per member", row.get("mean_monetary"), ",.0f", "£"),
    ]
    fig = go.Figure()
    for i, (title, value, fmt, prefix) in enumerate(tiles):
        if value is None or pd.isna(value):
            raise MissingData(f"{SCHEMA}.{table} has no value for {title.lower()}")
        fig.add_trace(
            go.Indicator(
                mode="number",
                value=float(value),
                number={"valueformat": fmt, "prefix": prefix, "font": {"size": 44}},
                title={"text": title, "font": {"size": 15}},
                domain={"row": 0, "column": i},
            )
        )
    segment = row.get("segment_name")
    rule = row.get("eligibility_rule")
    note = " · ".join(
        str(part)
        for part in (f"Segment: {segment}" if segment else None, rule)
        if part and not pd.isna(part)
    )
    if note:
        fig.add_annotation(
            text=html.escape(textwrap.shorten(note, 180)),
            xref="paper",
            yref="paper",
            x=0.5,
            y=-0.12,
            showarrow=False,
            font={"size": 12, "color": "#555"},
        )
    fig.update_layout(grid={"rows": 1, "columns": len(tiles), "pattern": "independent"})
    return _layout(fig, height=230, margin={"l": 20, "r": 20, "t": 40, "b": 40})


#: Colours of the KMeans segments over time, by segment order (segment_id when known).
HISTORY_COLOURS = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6")


def _kmeans_migration(data: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The `kmeans` rows of segment_migration, with the snapshots as timestamps."""
    table = "segment_migration"
    frame = data[table]
    kind = column(frame, table, "segment_kind").astype(str)
    moves = frame[kind == "kmeans"].copy()
    if moves.empty:
        raise MissingData(f"{SCHEMA}.{table} has no snapshot pair (one snapshot only)")
    for name in ("from_snapshot", "to_snapshot"):
        moves[name] = pd.to_datetime(column(moves, table, name))
    return moves


def _segment_order(data: dict[str, pd.DataFrame], names: Sequence[str]) -> list[str]:
    """Segment names in segment_id order (segment_profiles), others after them by name."""
    known: list[str] = []
    if "segment_profiles" in data:
        profiles = sorted_by(data["segment_profiles"], "segment_profiles", "segment_id")
        known = [str(n) for n in column(profiles, "segment_profiles", "segment_name")]
    present = set(names)
    return [n for n in known if n in present] + sorted(present - set(known))


def draw_segment_sizes_over_time(data: dict[str, pd.DataFrame]) -> go.Figure:
    """Customers of each KMeans segment at every snapshot (the current ruler), summed from
    segment_migration: the to-segments of every pair, and the from-segments of the first."""
    moves = _kmeans_migration(data)
    first = moves[moves["from_snapshot"] == moves["from_snapshot"].min()]
    first = first[first["from_segment"].astype(str) != "new"]
    sizes = pd.concat(
        [
            pd.DataFrame(
                {
                    "snapshot": first["from_snapshot"],
                    "segment": first["from_segment"].astype(str),
                    "customers": first["customers"].astype(int),
                }
            ),
            pd.DataFrame(
                {
                    "snapshot": moves["to_snapshot"],
                    "segment": moves["to_segment"].astype(str),
                    "customers": moves["customers"].astype(int),
                }
            ),
        ]
    )
    grid = sizes.pivot_table(
        index="snapshot", columns="segment", values="customers", aggfunc="sum", fill_value=0
    ).sort_index()
    fig = go.Figure()
    for i, segment in enumerate(_segment_order(data, list(grid.columns))):
        fig.add_trace(
            go.Scatter(
                x=grid.index,
                y=grid[segment],
                name=segment,
                mode="lines+markers",
                line={"color": HISTORY_COLOURS[i % len(HISTORY_COLOURS)]},
                hovertemplate=f"{html.escape(segment)}: %{{y:,}} customers on %{{x|%Y-%m-%d}}"
                "<extra></extra>",
            )
        )
    return _layout(
        fig,
        xaxis={"title": "Snapshot (lines before this date)"},
        yaxis={"title": "Customers", "rangemode": "tozero"},
    )


def draw_segment_migration(data: dict[str, pd.DataFrame]) -> go.Figure:
    """Where the customers of the last snapshot were at the one before: the share of each
    from-segment (row) that is in each to-segment (column), with the counts."""
    moves = _kmeans_migration(data)
    last = moves[moves["to_snapshot"] == moves["to_snapshot"].max()]
    table = "segment_migration"
    frame = pd.DataFrame(
        {
            "from": column(last, table, "from_segment").astype(str),
            "to": column(last, table, "to_segment").astype(str),
            "customers": column(last, table, "customers").astype(int),
            "share": column(last, table, "share_of_from").astype(float),
        }
    )
    segments = _segment_order(data, sorted(set(frame["from"]) | set(frame["to"]) - {"new"}))
    rows = [s for s in segments if s in set(frame["from"])] + (
        ["new"] if "new" in set(frame["from"]) else []
    )
    columns = [s for s in segments if s in set(frame["to"])]
    share = frame.pivot_table(index="from", columns="to", values="share", aggfunc="sum")
    count = frame.pivot_table(index="from", columns="to", values="customers", aggfunc="sum")
    share = share.reindex(index=rows, columns=columns)
    count = count.reindex(index=rows, columns=columns)
    text = [
        ["" if pd.isna(c) else f"{int(c):,}<br>{s:.0%}" for c, s in zip(crow, srow, strict=True)]
        for crow, srow in zip(count.to_numpy(), share.to_numpy(), strict=True)
    ]
    before = last["from_snapshot"].iloc[0].strftime("%Y-%m-%d")
    after = last["to_snapshot"].iloc[0].strftime("%Y-%m-%d")
    fig = go.Figure(
        go.Heatmap(
            z=share.to_numpy(),
            x=columns,
            y=rows,
            text=text,
            texttemplate="%{text}",
            textfont={"size": 11},
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar={"title": "Share of row", "tickformat": ".0%"},
            hoverongaps=False,
            hovertemplate="%{y} on " + before + " → %{x} on " + after + ": %{z:.1%}<extra></extra>",
        )
    )
    return _layout(
        fig,
        height=max(320, 80 + 48 * len(rows)),
        xaxis={"title": f"Segment on {after}", "side": "top", "type": "category"},
        yaxis={"title": f"Segment on {before}", "autorange": "reversed", "type": "category"},
        margin={"l": 140, "r": 30, "t": 70, "b": 20},
    )


def draw_loyalty_changes(data: dict[str, pd.DataFrame]) -> go.Figure:
    """Customers who joined and left the loyalty programme at each snapshot, and the members
    that makes (members before + joined - left; at the first snapshot every member joined)."""
    table = "loyalty_programme_changes"
    changes = data[table]
    frame = pd.DataFrame(
        {
            "snapshot": pd.to_datetime(column(changes, table, "snapshot_date")),
            "change": column(changes, table, "change").astype(str),
        }
    )
    counts = pd.crosstab(frame["snapshot"], frame["change"]).sort_index()
    if counts.empty:
        raise MissingData(f"{SCHEMA}.{table} is empty")
    counts = counts.reindex(columns=["joined", "left"], fill_value=0)
    members = (counts["joined"] - counts["left"]).cumsum()
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Bar(x=counts.index, y=counts["joined"], name="Joined", marker_color="#54A24B"),
        secondary_y=False,
    )
    fig.add_trace(
        go.Bar(x=counts.index, y=-counts["left"], name="Left", marker_color="#E45756"),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=members.index,
            y=members,
            name="Members",
            mode="lines+markers",
            line={"color": "#1f3b57"},
        ),
        secondary_y=True,
    )
    fig.update_yaxes(title_text="Joined (up) / left (down)", secondary_y=False)
    fig.update_yaxes(title_text="Members", rangemode="tozero", secondary_y=True)
    return _layout(fig, barmode="relative", xaxis={"title": "Snapshot"})


PLAYBOOK_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("RFM segment", "rfm_segment", "{}"),
    ("Customers", "customers", "{:,.0f}"),
    ("Share of customers", "customer_share", "{:.1%}"),
    ("Share of revenue", "revenue_share", "{:.1%}"),
    ("Recommended action", "recommended_action", "{}"),
    ("Incentive", "incentive", "{}"),
)


def _playbook_products(data: dict[str, pd.DataFrame]) -> dict[str, str]:
    """Each RFM segment's first `PLAYBOOK_PRODUCTS` products (segment_top_products), one per
    line; empty when the serving file has no segment_top_products (an older build)."""
    if "segment_top_products" not in data:
        return {}
    top = _top_products(data, "rfm", PLAYBOOK_PRODUCTS)
    top = top.assign(label=[_short(v) for v in _product_names(top, "segment_top_products")])
    segments = column(top, "segment_top_products", "rfm_segment").astype(str)
    return {str(s): "<br>".join(group["label"]) for s, group in top.groupby(segments, sort=True)}


def draw_playbook(data: dict[str, pd.DataFrame]) -> go.Figure:
    """The segment playbook: what marketing does with each RFM segment, its weight, and, when
    the serving file has segment_top_products, the products its customers buy most."""
    table = "rfm_segment_summary"
    summary = sorted_by(data[table], table, "segment_order")
    products = _playbook_products(data)
    spec, widths = PLAYBOOK_COLUMNS, [1.3, 0.8, 0.8, 0.8, 3.2, 2.2]
    if products:
        segments = column(summary, table, "rfm_segment").astype(str)
        summary = summary.assign(top_products=[products.get(s, "") for s in segments])
        spec = (*spec, ("Top products (by customers buying)", "top_products", "{}"))
        widths = [1.2, 0.7, 0.7, 0.7, 2.8, 2.0, 2.4]
    trace = _table_trace(summary, table, spec, "#54A24B")
    trace.columnwidth = widths
    trace.cells.height = 30
    fig = go.Figure(trace)
    height = 60 + _table_rows_height(trace.cells.values, widths)
    return _layout(fig, height=height, margin={"l": 10, "r": 10, "t": 10, "b": 10})


#: How each comparison of segment_rules reads, per feature: (at most, at least, below).
RULE_WORDS: dict[str, tuple[str, str, str]] = {
    "recency_days": (
        "last purchase at most {} days ago",
        "last purchase at least {} days ago",
        "last purchase less than {} days ago",
    ),
    "frequency": ("at most {} orders", "{} or more orders", "fewer than {} orders"),
    "monetary": ("net spend at most £{}", "net spend £{} or more", "net spend below £{}"),
}
BACKTEST_RULE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("Segment", "segment_name", "{}"),
    ("Rule (customer_rfm columns)", "rule", "{}"),
    ("In words", "words", "{}"),
    ("Customers matched", "customers_matched", "{:,.0f}"),
    ("Precision", "precision", "{:.0%}"),
    ("Recall", "recall", "{:.0%}"),
)


def rule_in_words(rule: object) -> str:
    """A segment_rules rule in words (`frequency >= 6` -> `6 or more orders`); a comparison the
    words do not know stays as written."""
    text = _one_line(rule)
    if text == "true":
        return "every customer"
    words = []
    for part in text.split(" and "):
        feature, op, value = (part.split(" ", 2) + ["", ""])[:3]
        forms = RULE_WORDS.get(feature)
        if forms is None or op not in ("<=", ">=", "<"):
            words.append(part)
            continue
        if feature == "monetary":
            try:
                value = f"{float(value):,.2f}"
            except ValueError:
                words.append(part)
                continue
        words.append(forms[("<=", ">=", "<").index(op)].format(value))
    return html.escape(", ".join(words), quote=False)


def _backtest_note(row: pd.Series) -> str:
    """Segment 1 against the rest in one sentence, from the segment 1 row of segment_backtest."""
    ratio, low, high = (
        row.get(c) for c in ("ratio_vs_rest", "ratio_vs_rest_ci_low", "ratio_vs_rest_ci_high")
    )
    cut = pd.Timestamp(row.get("cut_date")).date().isoformat()
    days = f"the {int(row.get('horizon_days'))} days after"
    name = _text(row.get("segment_name"))
    if ratio is None or pd.isna(ratio):
        return f"Segmented on {cut}: no ratio for segment 1 ({name}), the others spent nothing."
    interval = (
        f" (bootstrap 95% interval {low:.1f} to {high:.1f})"
        if low is not None and not pd.isna(low)
        else ""
    )
    return (
        f"Segmented on {cut}, segment 1 ({name}) spent {ratio:.1f} times as much per customer "
        f"as the rest in {days}{interval}."
    )


#: Pixels of the backtest's bar chart, and between it and the rules table.
BACKTEST_BARS_PX, BACKTEST_GAP_PX = 320, 90


def draw_segment_backtest(data: dict[str, pd.DataFrame]) -> go.Figure:
    """The backtest: each segment refitted at the cut, its revenue per customer and retention in
    the horizon after, segment 1 against the rest; and, when the serving file has
    segment_rules, the segments as rules (the loyalty programme's entry rule is segment 1's)."""
    table = "segment_backtest"
    backtest = sorted_by(data[table], table, "segment_id")
    if backtest.empty:
        raise MissingData(
            f"{SCHEMA}.{table} is empty: the customers before its cut could not be segmented"
        )
    names = column(backtest, table, "segment_name").astype(str)
    per_customer = column(backtest, table, "revenue_after_per_customer").astype(float)
    retention = column(backtest, table, "retention_rate").astype(float)
    rules_trace, table_px, agreement = None, 0, None
    if "segment_rules" in data:
        rules = sorted_by(data["segment_rules"], "segment_rules", "rule_id")
        rules = rules.assign(
            words=[rule_in_words(r) for r in column(rules, "segment_rules", "rule")]
        )
        rules_trace = _table_trace(rules, "segment_rules", BACKTEST_RULE_COLUMNS, "#54A24B")
        widths = [1.0, 2.8, 2.8, 0.8, 0.7, 0.7]
        rules_trace.columnwidth = widths
        table_px = 40 + _table_rows_height(rules_trace.cells.values, widths)
        shares = column(rules, "segment_rules", "agreement")
        agreement = float(shares.iloc[0]) if len(shares) else None
    plot_px = BACKTEST_BARS_PX + (BACKTEST_GAP_PX + table_px if rules_trace else 0)
    fig = make_subplots(
        rows=2 if rules_trace else 1,
        cols=1,
        row_heights=[BACKTEST_BARS_PX, table_px] if rules_trace else [1],
        vertical_spacing=BACKTEST_GAP_PX / plot_px if rules_trace else 0.0,
        specs=[[{"type": "xy", "secondary_y": True}]]
        + ([[{"type": "table"}]] if rules_trace else []),
    )
    fig.add_trace(
        go.Bar(
            x=names,
            y=per_customer,
            name="Net revenue per customer after the cut",
            marker_color="#4C78A8",
            text=[f"£{v:,.0f}" for v in per_customer],
            textposition="outside",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=names,
            y=retention,
            name="Share who bought again after the cut",
            mode="lines+markers",
            marker_color="#F58518",
        ),
        row=1,
        col=1,
        secondary_y=True,
    )
    fig.update_yaxes(rangemode="tozero", tickprefix="£", row=1, col=1, secondary_y=False)
    fig.update_yaxes(
        range=[0, 1.05], dtick=0.2, tickformat=".0%", showgrid=False, row=1, col=1, secondary_y=True
    )
    notes = []
    first = backtest[column(backtest, table, "segment_id").astype(int) == 1]
    if not first.empty:
        notes.append((_backtest_note(first.iloc[0]), 1.0 + 45 / plot_px))
    if rules_trace is not None:
        fig.add_trace(rules_trace, row=2, col=1)
        shown = f"{agreement:.1%}" if agreement is not None else "no"
        notes.append(
            (
                f"The segments as rules: a depth-3 decision tree agrees with the KMeans segments "
                f"on {shown} of customers; the loyalty programme's entry rule is segment 1's rows.",
                (table_px + 10) / plot_px,
            )
        )
    for text, y in notes:
        fig.add_annotation(
            text=text,
            xref="paper",
            yref="paper",
            x=0,
            y=y,
            xanchor="left",
            yanchor="bottom",
            showarrow=False,
            font={"size": 13},
        )
    return _layout(
        fig,
        height=plot_px + 130,
        margin={"l": 60, "r": 60, "t": 90, "b": 40},
    )


def _table_rows_height(columns: Sequence[Sequence[str]], widths: Sequence[float]) -> int:
    """Pixels a Plotly table's rows take once their cells wrap, estimated for the report's
    full width (about 1,250 px of 7 px characters): every row shows, with no inner scroll."""
    chars = [max(8, int(1250 / 7 * w / sum(widths))) for w in widths]
    rows = zip(*columns, strict=True) if columns else iter(())
    total = 0
    for cells in rows:
        lines = max(
            sum(len(textwrap.wrap(part, width) or [""]) for part in str(cell).split("<br>"))
            for cell, width in zip(cells, chars, strict=True)
        )
        total += 14 + 16 * lines
    return total


# --- Recommendations: the two lists and their test on the holdout ---

RECOMMENDATION_LIST_LABELS = {"reorder": "Order again", "new": "You may also like"}
RECOMMENDATION_COLUMNS = (
    ("List", "list", "{}"),
    ("Method", "method", "{}"),
    ("Customers", "customers_evaluated", "{:,}"),
    ("Recall@k, own target", "recall_at_k", "{:.3f}"),
    ("Precision@k, own target", "precision_at_k", "{:.3f}"),
    ("Hit rate@k, own target", "hit_rate_at_k", "{:.3f}"),
    ("Recall@k, all items", "recall_at_k_all_items", "{:.3f}"),
    ("Precision@k, all items", "precision_at_k_all_items", "{:.3f}"),
    ("Hit rate@k, all items", "hit_rate_at_k_all_items", "{:.3f}"),
    ("Selected", "chosen", "{}"),
)


def draw_recommendation_lists(data: dict[str, pd.DataFrame]) -> go.Figure:
    """Both lists' methods tested on the holdout: on the list's own target (products bought
    again, or new to the customer) and on everything bought after the split; the recall of
    each on all items as bars, the selected method of each list marked."""
    table = "recommendation_evaluation"
    rows = data[table].copy()
    kinds = column(rows, table, "list_kind").astype(str)
    rows = rows.assign(
        list=[RECOMMENDATION_LIST_LABELS.get(k, k) for k in kinds],
        chosen=["yes" if s else "" for s in column(rows, table, "is_selected")],
        kind_order=[0 if k == "reorder" else 1 for k in kinds],
    ).sort_values(["kind_order", "method"], kind="stable")
    if rows.empty:
        raise MissingData(f"{SCHEMA}.{table} is empty")
    trace = _table_trace(rows, table, RECOMMENDATION_COLUMNS, "#4C78A8")
    widths = [1.1, 1.3, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.6]
    trace.columnwidth = widths
    table_px = 60 + _table_rows_height(trace.cells.values, widths)
    bars_px = 300
    fig = make_subplots(
        rows=2,
        cols=1,
        row_heights=[bars_px, table_px],
        vertical_spacing=60 / (bars_px + table_px),
        specs=[[{"type": "xy"}], [{"type": "table"}]],
    )
    for kind, colour in (("reorder", "#54A24B"), ("new", "#4C78A8")):
        mine = rows[rows["list_kind"].astype(str) == kind]
        names = [
            f"{m}{' (selected)' if c else ''}"
            for m, c in zip(mine["method"], mine["chosen"], strict=True)
        ]
        fig.add_trace(
            go.Bar(
                x=names,
                y=column(mine, table, "recall_at_k_all_items").astype(float),
                name=RECOMMENDATION_LIST_LABELS[kind],
                marker_color=colour,
            ),
            row=1,
            col=1,
        )
    fig.add_trace(trace, row=2, col=1)
    k = _fmt("{}", column(rows, table, "k").iloc[0])
    split = pd.Timestamp(column(rows, table, "test_start_date").iloc[0])
    fig.update_yaxes(title_text=f"Recall@{k}, all items", row=1, col=1)
    fig.add_annotation(
        text=html.escape(
            f"Trained on the lines before {split:%Y-%m-%d}; recall of each list on everything "
            "the scored customers bought from that day on."
        ),
        xref="paper",
        yref="paper",
        x=0,
        y=1.0,
        yanchor="bottom",
        showarrow=False,
        font={"size": 12, "color": "#555"},
    )
    return _layout(
        fig,
        height=bars_px + table_px + 120,
        barmode="group",
        margin={"l": 60, "r": 20, "t": 50, "b": 20},
    )


RECOMMENDATION_CHARTS: tuple[Chart, ...] = (
    Chart(
        "chart-recommendation-lists",
        "Recommendations: order again, and you may also like",
        "Trained before the holdout split, which products did each list get right after it: "
        "the products bought again, the new ones, and everything together?",
        ("recommendation_evaluation",),
        draw_recommendation_lists,
        wide=True,
    ),
)


# --- Customer lifetime value (issue 14): calibration plot, forecast per segment, p_alive ---


CLV_CANDIDATE_LABELS = {
    "naive_baseline": "Naive baseline (past rate)",
    "seasonal_baseline": "Seasonal baseline",
    "bg_nbd": "BG/NBD",
    "mbg_nbd": "MBG/NBD",
    "pareto_nbd": "Pareto/NBD",
}
CLV_CANDIDATE_COLOURS = {
    "naive_baseline": "#F58518",
    "seasonal_baseline": "#E45756",
    "bg_nbd": "#72B7B2",
    "mbg_nbd": "#B279A2",
    "pareto_nbd": "#9D755D",
}


def _selected_candidate(data: dict[str, pd.DataFrame]) -> pd.Series:
    """The row of clv_validation_summary the validation selected."""
    table = "clv_validation_summary"
    summary = data[table]
    chosen = summary[column(summary, table, "is_selected").astype(bool)]
    if chosen.empty:
        raise MissingData(f"{SCHEMA}.{table} selected no candidate")
    return chosen.iloc[0]


def draw_clv_calibration(data: dict[str, pd.DataFrame]) -> go.Figure:
    """The standard calibration plot: mean actual repeat purchase days in the holdout by
    calibration frequency, against each candidate's prediction (the selected one bold), with
    the selected candidate's totals from clv_validation_summary."""
    table = "clv_validation"
    buckets = data[table].sort_values(["model", "frequency_bucket"], kind="stable")
    models = column(buckets, table, "model").astype(str)
    selected = _selected_candidate(data)
    first = buckets[models == str(selected["model"])]
    fig = go.Figure(
        go.Scatter(
            x=column(first, table, "frequency_bucket_label").astype(str),
            y=column(first, table, "mean_actual_purchases").astype(float),
            name="Actual",
            mode="lines+markers",
            line={"color": "#4C78A8", "width": 4},
        )
    )
    for model in [m for m in CLV_CANDIDATE_LABELS if m in set(models)]:
        rows = buckets[models == model]
        chosen = model == selected["model"]
        fig.add_trace(
            go.Scatter(
                x=column(rows, table, "frequency_bucket_label").astype(str),
                y=column(rows, table, "mean_predicted_purchases").astype(float),
                name=CLV_CANDIDATE_LABELS[model] + (" (selected)" if chosen else ""),
                mode="lines+markers",
                line={
                    "color": CLV_CANDIDATE_COLOURS[model],
                    "width": 3 if chosen else 1.5,
                    "dash": "solid" if chosen else "dot",
                },
            )
        )
    start = pd.Timestamp(selected.get("calibration_end_date")) + pd.Timedelta(days=1)
    end = pd.Timestamp(selected.get("holdout_end_date"))
    note = (
        f"Holdout {start:%Y-%m-%d} to {end:%Y-%m-%d}; "
        f"{CLV_CANDIDATE_LABELS.get(str(selected['model']), selected['model'])} selected: "
        f"revenue predicted £{_fmt('{:,.0f}', selected.get('predicted_revenue'))},<br>actual "
        f"£{_fmt('{:,.0f}', selected.get('actual_revenue'))}; MAE per customer "
        f"{_fmt('{:.2f}', selected.get('mae_purchases'))} purchase days"
    )
    fig.add_annotation(
        text=html.escape(note).replace("&lt;br&gt;", "<br>"),
        xref="paper",
        yref="paper",
        x=0,
        y=-0.3,
        showarrow=False,
        xanchor="left",
        font={"size": 12, "color": "#555"},
    )
    fig.update_xaxes(title_text="Repeat purchase days in the calibration period", type="category")
    fig.update_yaxes(title_text="Mean repeat purchase days in the holdout", rangemode="tozero")
    return _layout(fig, height=460, margin={"l": 60, "r": 30, "t": 60, "b": 120})


CLV_COMPARISON_COLUMNS = (
    ("Candidate", "label", "{}"),
    ("Customers", "customers", "{:,}"),
    ("Predicted purchase days", "predicted_purchases", "{:,.0f}"),
    ("Actual", "actual_purchases", "{:,}"),
    ("Predicted revenue", "predicted_revenue", "£{:,.0f}"),
    ("Actual revenue", "actual_revenue", "£{:,.0f}"),
    ("MAE purchase days", "mae_purchases", "{:.3f}"),
    ("MAE revenue", "mae_revenue", "£{:,.1f}"),
    ("Selected", "chosen", "{}"),
)


def draw_clv_model_comparison(data: dict[str, pd.DataFrame]) -> go.Figure:
    """Every lifetime-value candidate refitted before the holdout, against what customers then
    did: totals and errors, the selected one marked, and the rule."""
    table = "clv_validation_summary"
    summary = data[table].copy()
    order = {m: i for i, m in enumerate(CLV_CANDIDATE_LABELS)}
    models = column(summary, table, "model").astype(str)
    summary = summary.assign(
        label=[CLV_CANDIDATE_LABELS.get(m, m) for m in models],
        chosen=["yes" if s else "" for s in column(summary, table, "is_selected")],
        rank=[order.get(m, len(order)) for m in models],
    ).sort_values("rank", kind="stable")
    trace = _table_trace(summary, table, CLV_COMPARISON_COLUMNS, "#4C78A8")
    fig = go.Figure(trace)
    rule = str(column(summary, table, "selection_rule").iloc[0]) if len(summary) else ""
    fig.add_annotation(
        text="<br>".join(html.escape(part) for part in textwrap.wrap(f"Rule: {rule}.", 150)),
        xref="paper",
        yref="paper",
        x=0,
        y=0,
        showarrow=False,
        xanchor="left",
        yanchor="top",
        align="left",
        font={"size": 12, "color": "#555"},
    )
    return _layout(fig, height=140 + 30 * len(summary), margin={"l": 10, "r": 10, "t": 10, "b": 60})


def draw_clv_segment_forecast(data: dict[str, pd.DataFrame]) -> go.Figure:
    """Expected revenue over the horizon per KMeans and per RFM segment, next to the revenue
    of the same number of days just past."""
    table = "segment_forecast"
    forecast = data[table].sort_values(
        ["segment_kind", "segment_id", "segment"], kind="stable", na_position="last"
    )
    segment_kind = column(forecast, table, "segment_kind").astype(str)
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.4, 0.6],
        subplot_titles=("KMeans segments", "RFM segments"),
        horizontal_spacing=0.08,
    )
    for col, kind in ((1, "kmeans"), (2, "rfm")):
        rows = forecast[segment_kind == kind]
        names = column(rows, table, "segment").astype(str)
        for name, label, colour in (
            ("past_revenue", "Revenue, same days just past", "#9DB9D3"),
            ("expected_revenue", "Expected revenue, next days", "#F58518"),
        ):
            fig.add_trace(
                go.Bar(
                    x=names,
                    y=column(rows, table, name).astype(float),
                    name=label,
                    marker_color=colour,
                    showlegend=col == 1,
                    legendgroup=name,
                ),
                row=1,
                col=col,
            )
    fig.update_yaxes(tickprefix="£", rangemode="tozero")
    return _layout(fig, height=460, barmode="group")


def draw_clv_p_alive(data: dict[str, pd.DataFrame]) -> go.Figure:
    """How many customers the model thinks are still active: customers per tenth of p_alive."""
    table = "clv_p_alive_distribution"
    baseline = None
    if "clv_validation_summary" in data:
        selected = str(_selected_candidate(data)["model"])
        if selected.endswith("_baseline"):
            baseline = CLV_CANDIDATE_LABELS.get(selected, selected)
    bins = sorted_by(data[table], table, "bin_number")
    lows = column(bins, table, "p_alive_from").astype(float)
    highs = column(bins, table, "p_alive_to").astype(float)
    fig = go.Figure(
        go.Bar(
            x=[f"{lo:.1f}-{hi:.1f}" for lo, hi in zip(lows, highs, strict=True)],
            y=column(bins, table, "customers").astype(float),
            marker_color="#54A24B",
            name="Customers",
        )
    )
    fig.update_xaxes(title_text="Probability the customer is still active (p_alive)")
    fig.update_yaxes(title_text="Customers", rangemode="tozero")
    if baseline is not None:
        fig.add_annotation(
            text=html.escape(
                f"The holdout selected the {baseline.lower()}:<br>no model with dropout "
                "predicted better than each<br>customer's past rate, so no probability alive "
                "is published."
            ).replace("&lt;br&gt;", "<br>"),
            xref="paper",
            yref="paper",
            x=0.5,
            y=0.5,
            showarrow=False,
            font={"size": 14, "color": "#555"},
        )
    return _layout(fig)


CLV_CHARTS: tuple[Chart, ...] = (
    Chart(
        "chart-clv-model-comparison",
        "Lifetime value: which model earns its place",
        "Refitted before the holdout, which candidate predicted what customers then spent "
        "best, and is any model better than repeating each customer's past rate?",
        ("clv_validation_summary",),
        draw_clv_model_comparison,
        wide=True,
    ),
    Chart(
        "chart-clv-calibration",
        "Lifetime value: predicted vs actual purchases",
        "Do the candidates, refitted before the holdout, predict what customers then did?",
        ("clv_validation", "clv_validation_summary"),
        draw_clv_calibration,
    ),
    Chart(
        "chart-clv-p-alive",
        "Lifetime value: who is still active",
        "How many customers does the model think are still active?",
        ("clv_p_alive_distribution",),
        draw_clv_p_alive,
        optional=("clv_validation_summary",),
    ),
    Chart(
        "chart-clv-segment-forecast",
        "Lifetime value: expected revenue per segment",
        "What will each segment spend over the horizon, against what it spent just before?",
        ("segment_forecast",),
        draw_clv_segment_forecast,
        wide=True,
    ),
)


CHARTS: tuple[Chart, ...] = (
    Chart(
        "chart-monthly-revenue",
        "Monthly revenue and active customers",
        "How does the business move month by month?",
        ("monthly_kpis",),
        draw_monthly_revenue,
        wide=True,
    ),
    Chart(
        "chart-new-customer-ratio",
        "New customers and their share of active customers",
        "How many customers are new each month?",
        ("monthly_kpis",),
        draw_new_customer_ratio,
    ),
    Chart(
        "chart-weekday-hour",
        "Revenue by weekday and hour",
        "When do people buy?",
        ("sales_by_weekday_hour",),
        draw_weekday_hour,
    ),
    Chart(
        "chart-cohort-retention",
        "Cohort retention",
        "How well do cohorts of new customers come back?",
        ("cohort_retention",),
        draw_cohort_retention,
        wide=True,
    ),
    Chart(
        "chart-rfm-treemap",
        "RFM segments",
        "Who are the customers, by recency, frequency and spend?",
        ("rfm_segment_summary",),
        draw_rfm_treemap,
    ),
    Chart(
        "chart-model-selection",
        "Choosing the number of segments",
        "Why this many segments? Elbow of inertia and silhouette over k.",
        ("segment_model_selection",),
        draw_model_selection,
    ),
    Chart(
        "chart-segment-profiles",
        "Segment profiles",
        "What characterises each segment, and what share of revenue does it bring?",
        ("segment_profiles",),
        draw_segment_profiles,
        wide=True,
    ),
    Chart(
        "chart-segment-top-products",
        "Top products per segment",
        "Which products does each segment buy most?",
        ("segment_top_products", "segment_profiles"),
        draw_segment_top_products,
        wide=True,
    ),
    Chart(
        "chart-starter-products",
        "What new customers buy first",
        "Which products are in customers' first orders, and do those starters come back?",
        ("new_customer_starter_products",),
        draw_starter_products,
        wide=True,
    ),
    Chart(
        "chart-loyalty-programme",
        "Loyalty programme",
        "Who is eligible for the loyalty programme, and how many are they?",
        ("loyalty_programme_summary",),
        draw_loyalty_programme,
        wide=True,
    ),
    Chart(
        "chart-segment-sizes-over-time",
        "Segments over time",
        "How many customers were in each segment at the start of each month, by today's ruler?",
        ("segment_migration",),
        draw_segment_sizes_over_time,
        optional=("segment_profiles",),
    ),
    Chart(
        "chart-loyalty-changes",
        "Loyalty programme joiners and leavers",
        "How many customers joined and left the programme each month?",
        ("loyalty_programme_changes",),
        draw_loyalty_changes,
    ),
    Chart(
        "chart-segment-migration",
        "Segment migration since the previous snapshot",
        "Where were the customers of each segment at the previous snapshot?",
        ("segment_migration",),
        draw_segment_migration,
        wide=True,
        optional=("segment_profiles",),
    ),
    Chart(
        "chart-segment-backtest",
        "Do the segments predict spend? The backtest and the rules",
        "Segmented as of an earlier date, did segment 1 go on to spend more than the others? "
        "And which rules describe the segments (the loyalty programme's entry)?",
        ("segment_backtest",),
        draw_segment_backtest,
        wide=True,
        optional=("segment_rules",),
    ),
    Chart(
        "chart-segment-playbook",
        "Segment playbook",
        "What should marketing do with each segment?",
        ("rfm_segment_summary",),
        draw_playbook,
        wide=True,
        optional=("segment_top_products",),
    ),
    *RECOMMENDATION_CHARTS,
    *CLV_CHARTS,
)

CHART_IDS: tuple[str, ...] = tuple(chart.chart_id for chart in CHARTS)


def published_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Names of the tables in schema `marts` of the serving file."""
    rows = con.execute(
        "select table_name from duckdb_tables() where schema_name = ?", [SCHEMA]
    ).fetchall()
    return {name for (name,) in rows}


def load_tables(con: duckdb.DuckDBPyConnection, names: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Read the named marts (small summary tables) into data frames, in one snapshot."""
    frames = {}
    con.execute("begin transaction")
    try:
        for name in sorted(set(names)):
            quoted = '"' + name.replace('"', '""') + '"'
            frames[name] = con.execute(f"select * from {SCHEMA}.{quoted}").df()
    finally:
        con.execute("rollback")
    return frames


def build_info(con: duckdb.DuckDBPyConnection, tables: set[str]) -> dict[str, str]:
    """The build the serving file comes from (`marts.build_info`), as display strings."""
    if "build_info" not in tables:
        return {}
    frame = con.execute(f"select build_id, built_at from {SCHEMA}.build_info").df()
    if frame.empty:
        return {}
    return {
        "build_id": str(frame["build_id"].iloc[0]),
        "built_at": pd.Timestamp(frame["built_at"].iloc[0]).strftime("%Y-%m-%d %H:%M UTC"),
    }


def render_section(chart: Chart, data: dict[str, pd.DataFrame], available: set[str]) -> str:
    """The HTML of one section: the drawn chart, or a message naming what is missing."""
    missing = [t for t in chart.tables if t not in available]
    body: str
    if missing:
        body = _missing(
            f"Not available: {', '.join(f'{SCHEMA}.{t}' for t in missing)} "
            "is not in the serving file. Run `make build` to publish a complete build."
        )
    else:
        try:
            needed = (*chart.tables, *(t for t in chart.optional if t in available))
            fig = chart.draw({t: data[t] for t in needed})
        except MissingData as exc:
            body = _missing(f"Not available: {exc}.")
        else:
            body = pio.to_html(
                fig,
                full_html=False,
                include_plotlyjs=False,
                div_id=chart.chart_id,
                config=PLOTLY_CONFIG,
                validate=True,
            )
    css = "card wide" if chart.wide else "card"
    return (
        f'<section class="{css}" id="section-{chart.chart_id}">'
        f"<h2>{html.escape(chart.title)}</h2>"
        f'<p class="question">{html.escape(chart.question)}</p>{body}</section>'
    )


def _script_json(value: object) -> str:
    """JSON to embed in a <script> element: raw text there, so only `</` must be escaped."""
    return json.dumps(value, sort_keys=True).replace("</", "<\\/")


def _missing(message: str) -> str:
    return f'<div class="missing" role="alert">{html.escape(message)}</div>'


STYLE = """
body { font-family: Helvetica, Arial, sans-serif; margin: 0; background: #f4f5f7; color: #222; }
header { background: #1f3b57; color: white; padding: 18px 32px; }
header h1 { margin: 0 0 4px 0; font-size: 24px; }
header p { margin: 0; opacity: 0.85; font-size: 13px; }
main { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px;
       padding: 16px 32px 32px 32px; }
.card { background: white; border-radius: 8px; padding: 12px 16px;
        box-shadow: 0 1px 3px rgba(0, 0, 0, 0.12); }
.card.wide { grid-column: 1 / -1; }
.card h2 { font-size: 17px; margin: 4px 0; }
.question { margin: 0 0 8px 0; color: #666; font-size: 13px; }
.missing { padding: 24px; background: #fff4e5; color: #8a4b00; border-radius: 6px; }
@media (max-width: 1000px) { main { grid-template-columns: minmax(0, 1fr); } }
"""


def render_report(con: duckdb.DuckDBPyConnection) -> str:
    """The whole report as one HTML document."""
    available = published_tables(con)
    needed = sorted(
        {t for chart in CHARTS for t in (*chart.tables, *chart.optional) if t in available}
    )
    data = load_tables(con, needed)
    info = build_info(con, available)
    subtitle = (
        f"Build {info['build_id']} · built {info['built_at']}"
        if info
        else "Serving file without build information"
    )
    sections = "\n".join(render_section(chart, data, available) for chart in CHARTS)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>Customer segments</title>\n"
        f"<style>{STYLE}</style>\n"
        f'<script type="text/javascript">{get_plotlyjs()}</script>\n'
        "</head>\n<body>\n"
        "<header><h1>Customer segments</h1>"
        f"<p>{html.escape(subtitle)}</p></header>\n"
        f"<main>\n{sections}\n</main>\n"
        f'<script type="application/json" id="report-meta">'
        f"{_script_json({'charts': list(CHART_IDS), **info})}"
        "</script>\n"
        "</body>\n</html>\n"
    )


def write_report(serving: str | Path | None = None, output: str | Path = DEFAULT_OUTPUT) -> Path:
    """Render the report from the serving file and write it to `output`, atomically."""
    target = Path(output)
    with connect_readonly(serving) as con:
        document = render_report(con)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.tmp")
    temp.write_text(document, encoding="utf-8")
    temp.replace(target)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m customer_segmentation.report",
        description="Write the customer segmentation report (one self-contained HTML file).",
    )
    parser.add_argument("--serving", help="serving file (default: $SERVING_DUCKDB_PATH)")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help=f"default: {DEFAULT_OUTPUT}")
    args = parser.parse_args(argv)
    try:
        path = write_report(args.serving, args.output)
    except (FileNotFoundError, duckdb.Error) as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 1
    print(f"report: wrote {path} from {serving_path(args.serving)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
