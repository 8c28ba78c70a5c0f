"""A state machine drawn as an SVG: states in columns by their distance from the start,
transitions as arrows with the action's name. Drawn on the server, so the editor shows the
draft exactly as it is saved, without a script."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from html import escape

from casedesk.domain.statemachine.definition import Definition, StateType

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 150, 44, 90, 36, 20


@dataclass(frozen=True, slots=True)
class Placed:
    code: str
    name: str
    kind: str
    x: int
    y: int


def _columns(definition: Definition) -> dict[str, int]:
    """Each state's distance from the start states; states nothing reaches come last."""
    targets: dict[str, list[str]] = {}
    for transition in definition.transitions:
        targets.setdefault(transition.from_, []).append(transition.to)
    starts = [s.code for s in definition.states if s.type == StateType.START]
    column: dict[str, int] = {code: 0 for code in starts}
    queue = deque(starts)
    while queue:
        code = queue.popleft()
        for target in targets.get(code, []):
            if target not in column:
                column[target] = column[code] + 1
                queue.append(target)
    last = max(column.values(), default=-1) + 1
    for state in definition.states:
        column.setdefault(state.code, last)
    return column


def placed(definition: Definition) -> list[Placed]:
    column = _columns(definition)
    rows: dict[int, int] = {}
    out: list[Placed] = []
    seen: set[str] = set()
    for state in definition.states:
        if state.code in seen:
            continue
        seen.add(state.code)
        col = column[state.code]
        row = rows.get(col, 0)
        rows[col] = row + 1
        x = MARGIN + col * (BOX_W + GAP_X)
        y = MARGIN + row * (BOX_H + GAP_Y) + 14
        out.append(Placed(state.code, state.name, str(state.type), x, y))
    return out


def svg(definition: Definition, title: str) -> str:
    """The drawing; a transition between unknown states is left out (the problems say it)."""
    boxes = placed(definition)
    at = {box.code: box for box in boxes}
    width = max((b.x + BOX_W for b in boxes), default=0) + MARGIN
    height = max((b.y + BOX_H for b in boxes), default=0) + MARGIN
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="machine-graph" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        f"<title>{escape(title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z"/></marker></defs>',
    ]
    for n, transition in enumerate(definition.transitions):
        start, end = at.get(transition.from_), at.get(transition.to)
        if start is None or end is None:
            continue
        if start.code == end.code:
            x, y = start.x + BOX_W // 2, start.y
            parts.append(
                f'<path class="edge" d="M{x - 20},{y} C{x - 30},{y - 30} {x + 30},{y - 30} '
                f'{x + 20},{y}" marker-end="url(#arrow)"/>'
            )
            parts.append(
                f'<text class="edge-label" x="{x}" y="{y - 26}">{escape(transition.name)}</text>'
            )
            continue
        forward = end.x > start.x
        x1 = start.x + (BOX_W if forward else 0) if start.x != end.x else start.x + BOX_W // 2
        x2 = end.x + (0 if forward else BOX_W) if start.x != end.x else end.x + BOX_W // 2
        y1 = start.y + BOX_H // 2 + (6 if not forward else -6)
        y2 = end.y + BOX_H // 2 + (6 if not forward else -6)
        if start.x == end.x:
            y1, y2 = (start.y + BOX_H, end.y) if end.y > start.y else (start.y, end.y + BOX_H)
        bend = 0 if forward else 28 + 6 * (n % 3)
        mx, my = (x1 + x2) // 2, (y1 + y2) // 2 + bend
        parts.append(
            f'<path class="edge{" back" if not forward else ""}" d="M{x1},{y1} Q{mx},{my} '
            f'{x2},{y2}" marker-end="url(#arrow)"/>'
        )
        parts.append(
            f'<text class="edge-label" x="{mx}" y="{(y1 + y2) // 2 + bend // 2 - 4}">'
            f"{escape(transition.name)}</text>"
        )
    for box in boxes:
        parts.append(
            f'<g class="state state-{escape(box.kind)}"><rect x="{box.x}" y="{box.y}" '
            f'width="{BOX_W}" height="{BOX_H}" rx="8"/>'
            f'<text x="{box.x + BOX_W // 2}" y="{box.y + 19}">{escape(box.name)}</text>'
            f'<text class="code" x="{box.x + BOX_W // 2}" y="{box.y + 35}">'
            f"{escape(box.code)} · {escape(box.kind)}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)
