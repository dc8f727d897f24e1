"""A small streaming .xlsx writer: worksheets written row after row, plus bar charts.

An .xlsx file is a zip of XML parts. Each worksheet's rows are deflated as they come, on a thread of
the workbook's own (:mod:`formats.zip_package`), into an anonymous temporary file (several sheets can be
filled at once), and :meth:`StreamingWorkbook.close` assembles the parts into the zip. Only what a
sheet's closing elements need is kept in memory: its hyperlinks.

Cells are XML fragments built by :func:`text_cell`, :func:`number_cell`,
:func:`bool_cell` and :func:`date_cell`; text is always an inline string, never a
formula, and text that looks like one (``=``, ``+``, ``-``, ``@`` first) gets the cell style's
``quotePrefix``, so a user editing the cell in Excel does not turn it live. Callers give text that an
.xlsx can hold (no control characters, no lone surrogates, at most 32,767 UTF-16 units): the fragments only escape it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import BinaryIO

from atlasflow.formats.excel_limits import MAX_OUTLINE_LEVEL, MAX_URL_CHARS
from atlasflow.formats.zip_package import DeflatingPart, ZipWriter

STYLE_HEADER = 1
"""Bold, light blue fill, thin bottom border."""
STYLE_TITLE = 2
"""Bold, 14 points."""
STYLE_DATETIME = 3
"""Date and time: ``yyyy-mm-dd hh:mm``."""
STYLE_DATE = 4
"""Date: ``yyyy-mm-dd``."""
STYLE_LINK = 5
"""Excel's built-in "Hyperlink" cell style."""

#: Cell style with ``quotePrefix`` for each style whose text may look like a formula.
QUOTED_STYLE = {0: 6, STYLE_HEADER: 7, STYLE_LINK: 8}
_FORMULA_START = frozenset("=+-@")

BAR_COLOUR = "4472C4"
"""Chart bars: an explicit colour, since the package has no theme to take one from."""
GRID_COLOUR = "D9D9D9"
"""Excel ignores hyperlinks with longer URLs."""

_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT_PREFIX = "application/vnd.openxmlformats-officedocument."
_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_EMU_PER_PIXEL = 9525

_XHHHH = re.compile(r"_(?=x[0-9A-Fa-f]{4}_)")
_EPOCH = datetime(1899, 12, 30)
_EPOCH_UTC = _EPOCH.replace(tzinfo=UTC)
_DAY = timedelta(days=1)

_STYLES = f"""<styleSheet xmlns="{_MAIN_NS}">\
<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm"/>\
<numFmt numFmtId="165" formatCode="yyyy-mm-dd"/></numFmts>\
<fonts count="4">\
<font><sz val="11"/><name val="Calibri"/><family val="2"/></font>\
<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font>\
<font><b/><sz val="14"/><name val="Calibri"/><family val="2"/></font>\
<font><u/><sz val="11"/><color rgb="FF0563C1"/><name val="Calibri"/><family val="2"/></font>\
</fonts>\
<fills count="3"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>\
<fill><patternFill patternType="solid"><fgColor rgb="FFDDEBF7"/><bgColor indexed="64"/></patternFill></fill></fills>\
<borders count="2"><border><left/><right/><top/><bottom/><diagonal/></border>\
<border><left/><right/><top/><bottom style="thin"><color auto="1"/></bottom><diagonal/></border></borders>\
<cellStyleXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>\
<xf numFmtId="0" fontId="3" fillId="0" borderId="0" applyNumberFormat="0" applyFill="0" applyBorder="0" \
applyAlignment="0" applyProtection="0"/></cellStyleXfs>\
<cellXfs count="9"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>\
<xf numFmtId="0" fontId="1" fillId="2" borderId="1" xfId="0" applyFont="1" applyFill="1" applyBorder="1"/>\
<xf numFmtId="0" fontId="2" fillId="0" borderId="0" xfId="0" applyFont="1"/>\
<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>\
<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>\
<xf numFmtId="0" fontId="3" fillId="0" borderId="0" xfId="1" applyFont="1"/>\
<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" quotePrefix="1"/>\
<xf numFmtId="0" fontId="1" fillId="2" borderId="1" xfId="0" applyFont="1" applyFill="1" applyBorder="1" \
quotePrefix="1"/>\
<xf numFmtId="0" fontId="3" fillId="0" borderId="0" xfId="1" applyFont="1" quotePrefix="1"/></cellXfs>\
<cellStyles count="2"><cellStyle name="Hyperlink" xfId="1" builtinId="8"/>\
<cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>\
<dxfs count="0"/><tableStyles count="0" defaultTableStyle="TableStyleMedium9" defaultPivotStyle="PivotStyleLight16"/>\
</styleSheet>"""


def column_letters(count: int) -> list[str]:
    """The names of the first ``count`` columns: ``A``, ``B`` ... ``Z``, ``AA`` ..."""
    letters = []
    for index in range(count):
        name, number = "", index + 1
        while number:
            number, remainder = divmod(number - 1, 26)
            name = chr(65 + remainder) + name
        letters.append(name)
    return letters


def escape(text: str) -> str:
    """Escape text for XML content or a double-quoted attribute; ``\\r`` is kept as a character reference."""
    if "&" in text or "<" in text or ">" in text or '"' in text or "\r" in text:
        text = (
            text.replace("&", "&amp;")
            .replace("<", "&lt;")
            .replace(">", "&gt;")
            .replace('"', "&quot;")
            .replace("\r", "&#13;")
        )
    return text


def escape_xhhhh(text: str) -> str:
    """Protect text that looks like ECMA-376's ``_xHHHH_`` character escape (Excel would decode it):
    its underscore is written as ``_x005F_``, so ``_x0041_`` stays ``_x0041_`` instead of becoming ``A``."""
    return _XHHHH.sub(r"_x005F\g<0>", text)


def text_cell(ref: str, text: str, style: int = 0) -> str:
    """An inline string cell; whitespace at either end is preserved, formula-like text is quote-prefixed,
    ``_xHHHH_`` shown as written."""
    if text and text[0] in _FORMULA_START:
        style = QUOTED_STYLE.get(style, style)
    attributes = f' s="{style}"' if style else ""
    if "_x" in text:
        text = escape_xhhhh(text)
    if text[:1].isspace() or text[-1:].isspace():
        return f'<c r="{ref}"{attributes} t="inlineStr"><is><t xml:space="preserve">{escape(text)}</t></is></c>'
    return f'<c r="{ref}"{attributes} t="inlineStr"><is><t>{escape(text)}</t></is></c>'


def number_cell(ref: str, number: int | float, style: int = 0) -> str:
    """A number cell (``number`` must be finite; subclasses such as numpy's floats are written as floats)."""
    if type(number) is not int and type(number) is not float:
        number = float(number)
    if style:
        return f'<c r="{ref}" s="{style}"><v>{number!r}</v></c>'
    return f'<c r="{ref}"><v>{number!r}</v></c>'


def bool_cell(ref: str, value: bool) -> str:
    """A TRUE/FALSE cell."""
    return f'<c r="{ref}" t="b"><v>{value:d}</v></c>'


def date_cell(ref: str, value: date, style: int) -> str:
    """A date or datetime as Excel's serial number; aware datetimes are taken in UTC, naive ones as UTC already."""
    return f'<c r="{ref}" s="{style}"><v>{excel_serial(value):.16g}</v></c>'


def excel_serial(value: date) -> float:
    """Days since Excel's epoch (1900 date system, with its phantom 1900-02-29)."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    serial = ((value - _EPOCH_UTC) if value.tzinfo is not None else (value - _EPOCH)) / _DAY
    return serial if serial >= 61 else serial - 1


def _column_width(width: float) -> float:
    """Excel's stored width for a column ``width`` characters wide (padding included, as Excel does)."""
    pixels = int(width * 7 + 0.5) + 5 if width >= 1 else int(width * 12 + 0.5)
    return int(pixels / 7 * 256) / 256


@dataclass(frozen=True)
class BarChart:
    """A single-series bar or column chart of a range on the same sheet, without legend.

    Attributes:
        title: Chart and series title.
        categories: Range of the category labels, e.g. ``Summary!$A$10:$A$13``.
        values: Range of the values.
        text_categories: Whether the labels are text (else numbers).
        horizontal: Bars (True) or columns (False).
        anchor: (row, column), 0-based, of the chart's top left corner.
        size: (width, height) in pixels.
    """

    title: str
    categories: str
    values: str
    text_categories: bool
    horizontal: bool
    anchor: tuple[int, int]
    size: tuple[int, int]

    def xml(self) -> str:
        """The chart part."""
        title = escape(self.title)
        ref = "strRef" if self.text_categories else "numRef"
        cat_pos, val_pos = ("l", "b") if self.horizontal else ("b", "l")
        return (
            f'<c:chartSpace xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart" '
            f'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:r="{_REL_NS}">'
            '<c:lang val="en-US"/><c:chart><c:title><c:tx><c:rich><a:bodyPr/><a:lstStyle/><a:p><a:pPr><a:defRPr/>'
            f'</a:pPr><a:r><a:rPr lang="en-US"/><a:t>{title}</a:t></a:r></a:p></c:rich></c:tx><c:layout/>'
            '<c:overlay val="0"/></c:title><c:autoTitleDeleted val="0"/><c:plotArea><c:layout/><c:barChart>'
            f'<c:barDir val="{"bar" if self.horizontal else "col"}"/><c:grouping val="clustered"/>'
            '<c:varyColors val="0"/>'
            f'<c:ser><c:idx val="0"/><c:order val="0"/><c:tx><c:v>{title}</c:v></c:tx>'
            # explicit colours: without a theme part, theme-coloured bars render invisible in LibreOffice
            f'<c:spPr><a:solidFill><a:srgbClr val="{BAR_COLOUR}"/></a:solidFill></c:spPr><c:invertIfNegative val="0"/>'
            '<c:dLbls><c:showLegendKey val="0"/><c:showVal val="1"/><c:showCatName val="0"/>'
            '<c:showSerName val="0"/><c:showPercent val="0"/><c:showBubbleSize val="0"/></c:dLbls>'
            f"<c:cat><c:{ref}><c:f>{escape(self.categories)}</c:f></c:{ref}></c:cat>"
            f"<c:val><c:numRef><c:f>{escape(self.values)}</c:f></c:numRef></c:val></c:ser>"
            '<c:gapWidth val="150"/><c:axId val="50010001"/><c:axId val="50010002"/></c:barChart>'
            '<c:catAx><c:axId val="50010001"/><c:scaling><c:orientation val="minMax"/></c:scaling>'
            f'<c:delete val="0"/><c:axPos val="{cat_pos}"/><c:numFmt formatCode="General" sourceLinked="1"/>'
            '<c:tickLblPos val="nextTo"/><c:crossAx val="50010002"/><c:crosses val="autoZero"/><c:auto val="1"/>'
            '<c:lblAlgn val="ctr"/><c:lblOffset val="100"/></c:catAx>'
            '<c:valAx><c:axId val="50010002"/><c:scaling><c:orientation val="minMax"/></c:scaling>'
            f'<c:delete val="0"/><c:axPos val="{val_pos}"/><c:majorGridlines><c:spPr><a:ln w="9525">'
            f'<a:solidFill><a:srgbClr val="{GRID_COLOUR}"/></a:solidFill></a:ln></c:spPr></c:majorGridlines>'
            '<c:numFmt formatCode="General" sourceLinked="1"/><c:tickLblPos val="nextTo"/>'
            '<c:crossAx val="50010001"/><c:crosses val="autoZero"/><c:crossBetween val="between"/></c:valAx>'
            '</c:plotArea><c:plotVisOnly val="1"/><c:dispBlanksAs val="gap"/></c:chart></c:chartSpace>'
        )

    def anchor_xml(self, number: int) -> str:
        """The drawing's anchor for this chart, ``number`` being its 1-based index in the drawing."""
        row, col = self.anchor
        width, height = self.size
        return (
            f"<xdr:oneCellAnchor><xdr:from><xdr:col>{col}</xdr:col><xdr:colOff>0</xdr:colOff>"
            f"<xdr:row>{row}</xdr:row><xdr:rowOff>0</xdr:rowOff></xdr:from>"
            f'<xdr:ext cx="{width * _EMU_PER_PIXEL}" cy="{height * _EMU_PER_PIXEL}"/>'
            f'<xdr:graphicFrame macro=""><xdr:nvGraphicFramePr><xdr:cNvPr id="{number + 1}" name="Chart {number}"/>'
            '<xdr:cNvGraphicFramePr/></xdr:nvGraphicFramePr><xdr:xfrm><a:off x="0" y="0"/><a:ext cx="0" cy="0"/>'
            '</xdr:xfrm><a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/chart">'
            f'<c:chart xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart" xmlns:r="{_REL_NS}" '
            f'r:id="rId{number}"/></a:graphicData></a:graphic></xdr:graphicFrame><xdr:clientData/>'
            "</xdr:oneCellAnchor>"
        )


class Sheet:
    """One worksheet being written: its rows are deflated into ``part`` as they come.

    Args:
        part: Where the rows' XML goes.
        name: Sheet name (at most 31 characters, none of ``[]:*?/\\``).
        columns: Columns the sheet uses, for its dimension and autofilter.
        widths: Width of the first columns, in characters.
        freeze_header: Keep the first row in view while scrolling.
        autofilter: Put an autofilter over the used range.
    """

    def __init__(
        self,
        part: DeflatingPart,
        name: str,
        columns: int,
        widths: Sequence[float],
        *,
        freeze_header: bool,
        autofilter: bool,
    ) -> None:
        self.name = name
        self.columns = columns
        self.widths = widths
        self.freeze_header = freeze_header
        self.autofilter = autofilter
        self.last_row = -1
        self.outline_levels = 0
        self.links: list[tuple[str, str]] = []
        self.charts: list[BarChart] = []
        self._rows = part

    def write_row(self, row: int, cells: Iterable[str], *, outline_level: int = 0) -> None:
        """Write row ``row`` (0-based, below the rows written so far) from its cells' XML.

        ``outline_level`` (1 to 7, Excel's maximum) groups the row under the nearest row above it with
        a lower level, so that a reader can fold it away.
        """
        if row <= self.last_row:
            raise ValueError(f"row {row} of {self.name!r} comes after row {self.last_row}")
        self.last_row = row
        if outline_level:
            level = min(outline_level, MAX_OUTLINE_LEVEL)
            self.outline_levels = max(self.outline_levels, level)
            self._rows.write(f'<row r="{row + 1}" outlineLevel="{level}">{"".join(cells)}</row>')
        else:
            self._rows.write(f'<row r="{row + 1}">{"".join(cells)}</row>')

    def add_link(self, ref: str, url: str) -> bool:
        """Make cell ``ref`` a link to ``url``; False (and no link) when Excel would refuse the URL."""
        if len(url) > MAX_URL_CHARS:
            return False
        self.links.append((ref, url))
        return True

    def used_range(self) -> str:
        """The used range, header included, e.g. ``A1:M3``."""
        return f"A1:{column_letters(self.columns)[-1]}{max(self.last_row, 0) + 1}"

    def close(self) -> None:
        """Release the temporary file."""
        self._rows.close()

    def write_part(self, archive: ZipWriter, name: str, *, selected: bool) -> None:
        """Write the worksheet part: its head, the rows so far and its closing elements."""
        archive.add_deflated(name, *self._rows.finish(self._head(selected).encode(), self._tail().encode()))

    def _head(self, selected: bool) -> str:
        pane = (
            '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft"/>'
            if self.freeze_header
            else ""
        )
        cols = "".join(
            f'<col min="{n}" max="{n}" width="{_column_width(width)}" customWidth="1"/>'
            for n, width in enumerate(self.widths, start=1)
        )
        tab = ' tabSelected="1"' if selected else ""
        # outline buttons on the parent row above its children, as a tree reads
        outline = '<sheetPr><outlinePr summaryBelow="0"/></sheetPr>' if self.outline_levels else ""
        levels = f' outlineLevelRow="{self.outline_levels}"' if self.outline_levels else ""
        return (
            f'{_XML_DECLARATION}<worksheet xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}">{outline}'
            f'<dimension ref="{self.used_range()}"/><sheetViews><sheetView{tab} workbookViewId="0">{pane}'
            f'</sheetView></sheetViews><sheetFormatPr defaultRowHeight="15"{levels}/>'
            f"{f'<cols>{cols}</cols>' if cols else ''}<sheetData>"
        )

    def _tail(self) -> str:
        autofilter = f'<autoFilter ref="{self.used_range()}"/>' if self.autofilter else ""
        links = "".join(f'<hyperlink ref="{ref}" r:id="rId{n}"/>' for n, (ref, _) in enumerate(self.links, start=1))
        drawing = f'<drawing r:id="rId{len(self.links) + 1}"/>' if self.charts else ""
        return (
            f"</sheetData>{autofilter}{f'<hyperlinks>{links}</hyperlinks>' if links else ''}"
            '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
            f"{drawing}</worksheet>"
        )


class StreamingWorkbook:
    """A workbook written to a binary file: add sheets, fill them in any order, then :meth:`close`.

    Args:
        file: Where the .xlsx goes (a seekable binary file).
        compresslevel: zlib level of the parts (zlib's default, 6: level 1 deflates faster but makes
            a ~30% bigger file).
    """

    def __init__(self, file: BinaryIO, *, compresslevel: int = 6) -> None:
        self._file = file
        self._compresslevel = compresslevel
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="xlsx-deflate")
        self.sheets: list[Sheet] = []

    def add_sheet(
        self,
        name: str,
        columns: int,
        widths: Sequence[float] = (),
        *,
        freeze_header: bool = False,
        autofilter: bool = False,
    ) -> Sheet:
        """Add a worksheet after the others."""
        part = DeflatingPart(self._pool, self._compresslevel)
        sheet = Sheet(part, name, columns, widths, freeze_header=freeze_header, autofilter=autofilter)
        self.sheets.append(sheet)
        return sheet

    def discard(self) -> None:
        """Drop the sheets' temporary files without writing anything."""
        for sheet in self.sheets:
            sheet.close()
        self._pool.shutdown()

    def close(self) -> None:
        """Write the whole workbook to the file and drop the temporary files."""
        try:
            archive = ZipWriter(self._file)
            self._write_parts(archive)
            archive.close()
        finally:
            self.discard()

    def _write_parts(self, archive: ZipWriter) -> None:
        package = _Package(archive, self._compresslevel)
        workbook_rels = []
        charts = drawings = 0
        for number, sheet in enumerate(self.sheets, start=1):
            sheet.write_part(archive, f"xl/worksheets/sheet{number}.xml", selected=number == 1)
            package.types.append((f"/xl/worksheets/sheet{number}.xml", "spreadsheetml.worksheet+xml"))
            workbook_rels.append(_relationship(number, "worksheet", f"worksheets/sheet{number}.xml"))
            rels = [_relationship(n, "hyperlink", url, external=True) for n, (_, url) in enumerate(sheet.links, 1)]
            if sheet.charts:
                drawings += 1
                rels.append(_relationship(len(rels) + 1, "drawing", f"../drawings/drawing{drawings}.xml"))
                package.add_drawing(drawings, sheet.charts, first_chart=charts + 1)
                charts += len(sheet.charts)
            if rels:
                package.add(f"xl/worksheets/_rels/sheet{number}.xml.rels", _relationships(rels))
        workbook_rels.append(_relationship(len(self.sheets) + 1, "styles", "styles.xml"))
        package.add("xl/_rels/workbook.xml.rels", _relationships(workbook_rels))
        package.add("xl/styles.xml", _STYLES, "spreadsheetml.styles+xml")
        package.add("xl/workbook.xml", self._workbook_xml(), "spreadsheetml.sheet.main+xml")
        package.add("_rels/.rels", _relationships([_relationship(1, "officeDocument", "xl/workbook.xml")]))
        package.add_content_types()

    def _workbook_xml(self) -> str:
        sheets = "".join(
            f'<sheet name="{escape(sheet.name)}" sheetId="{n}" r:id="rId{n}"/>'
            for n, sheet in enumerate(self.sheets, start=1)
        )
        filters = "".join(
            f'<definedName name="_xlnm._FilterDatabase" localSheetId="{n}" hidden="1">'
            f"{escape(_quote_sheet(sheet.name))}!{_absolute(sheet.used_range())}</definedName>"
            for n, sheet in enumerate(self.sheets)
            if sheet.autofilter
        )
        return (
            f'<workbook xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}"><workbookPr/><bookViews><workbookView/></bookViews>'
            f"<sheets>{sheets}</sheets>{f'<definedNames>{filters}</definedNames>' if filters else ''}"
            '<calcPr calcId="124519" fullCalcOnLoad="1"/></workbook>'
        )


class _Package:
    """The zip being written, and the content types of the parts written so far."""

    def __init__(self, archive: ZipWriter, level: int) -> None:
        self.archive = archive
        self.level = level
        self.types: list[tuple[str, str]] = []

    def add(self, name: str, xml: str, content_type: str | None = None) -> None:
        """Write a part; ``content_type`` is the part of its type after ``...officedocument.``."""
        self.archive.add(name, (_XML_DECLARATION + xml).encode(), self.level)
        if content_type is not None:
            self.types.append((f"/{name}", content_type))

    def add_drawing(self, number: int, charts: Sequence[BarChart], *, first_chart: int) -> None:
        """Write drawing ``number`` holding ``charts``, numbered from ``first_chart``, with their parts."""
        for offset, chart in enumerate(charts):
            self.add(f"xl/charts/chart{first_chart + offset}.xml", chart.xml(), "drawingml.chart+xml")
        anchors = "".join(chart.anchor_xml(index) for index, chart in enumerate(charts, start=1))
        self.add(
            f"xl/drawings/drawing{number}.xml",
            '<xdr:wsDr xmlns:xdr="http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing" '
            f'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main">{anchors}</xdr:wsDr>',
            "drawing+xml",
        )
        rels = [
            _relationship(n, "chart", f"../charts/chart{first_chart + n - 1}.xml") for n in range(1, len(charts) + 1)
        ]
        self.add(f"xl/drawings/_rels/drawing{number}.xml.rels", _relationships(rels))

    def add_content_types(self) -> None:
        """Write ``[Content_Types].xml`` for the parts written so far."""
        overrides = "".join(
            f'<Override PartName="{name}" ContentType="{_CT_PREFIX}{kind}"/>' for name, kind in self.types
        )
        self.add(
            "[Content_Types].xml",
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            f'<Default Extension="xml" ContentType="application/xml"/>{overrides}</Types>',
        )


def _relationship(number: int, kind: str, target: str, *, external: bool = False) -> str:
    mode = ' TargetMode="External"' if external else ""
    return f'<Relationship Id="rId{number}" Type="{_REL_NS}/{kind}" Target="{escape(target)}"{mode}/>'


def _relationships(relationships: Sequence[str]) -> str:
    return f'<Relationships xmlns="{_PKG_REL_NS}">{"".join(relationships)}</Relationships>'


def _quote_sheet(name: str) -> str:
    """A sheet name as a formula reference needs it: quoted unless plain ASCII letters."""
    if name.isascii() and name.isalpha():
        return name
    return "'" + name.replace("'", "''") + "'"


def _absolute(area: str) -> str:
    """``A1:M3`` -> ``$A$1:$M$3``."""
    return ":".join(_absolute_cell(cell) for cell in area.split(":"))


def _absolute_cell(cell: str) -> str:
    letters = cell.rstrip("0123456789")
    return f"${letters}${cell[len(letters) :]}"


def chart_range(sheet: str, column: int, first_row: int, last_row: int) -> str:
    """An absolute single-column range, 0-based indices: ``Summary!$B$10:$B$13``."""
    letter = column_letters(column + 1)[-1]
    return f"{_quote_sheet(sheet)}!${letter}${first_row + 1}:${letter}${last_row + 1}"
