"""``provenance pii-check`` and ``provenance disclosure``: what a record holds and discloses."""

from __future__ import annotations

import importlib.resources
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from provenance._core.pii import PiiPolicy, check_fields
from provenance._core.record import FREE_TEXT_PARAMETERS, ProvenanceRecord
from provenance._io.reading import load_record
from provenance.cli._common import closing, existing_inventory, read_names, trust_policy
from provenance.cli._options import InventoryOption, JsonOption, NamesOption, TrustAnchorsOption
from provenance.cli._output import EXIT_FAILED, EXIT_OK, fail, out, print_json, reports_errors

if TYPE_CHECKING:
    from provenance._core.types import Verdict

_TEMPLATES = {
    "magento": ("magento", "disclosure.phtml"),
    "shopify": ("shopify", "provenance-disclosure.liquid"),
}


@reports_errors
def pii_check_command(
    record_file: Annotated[Path, typer.Argument(help="A provenance record JSON file.")],
    names: NamesOption = None,
    as_json: JsonOption = False,
) -> None:
    """Report personal data in a record's free text (never printing the data).

    Exit status: 0 nothing found, 1 personal data found, 2 unreadable record.

    Example: provenance pii-check shoe.jpg.json --names customers.txt
    """
    record = load_record(record_file)
    name_list = read_names(names)
    fields: dict[str, str] = {}
    if record.prompt is not None:
        fields["prompt"] = record.prompt
    for param, value in record.parameters.items():
        if isinstance(value, str) and param in FREE_TEXT_PARAMETERS:
            fields[f"parameters.{param}"] = value
    reports = check_fields(fields, PiiPolicy(names=name_list))
    found = [r for r in reports if r.kinds]
    if as_json:
        print_json({"path": str(record_file), "fields": [r.to_dict() for r in reports]})
    elif not found:
        out.line(f"{record_file}: no personal data found")
    else:
        for rep in found:
            kinds = ", ".join(k.value for k in rep.kinds)
            out.line(f"{record_file}: {rep.field}: {kinds} -> {rep.action.value}")
    raise typer.Exit(EXIT_FAILED if found else EXIT_OK)


@reports_errors
def disclosure_command(
    file: Annotated[
        Path | None, typer.Argument(help="An image (verified) or a record JSON (as signed).")
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="html (the <figure> markup) or json.")
    ] = "html",
    src: Annotated[
        str | None, typer.Option(help="The image URL in the markup (default: the file name).")
    ] = None,
    alt: Annotated[
        str, typer.Option(help="The image's alt text (what it shows).")
    ] = "Product image",
    template: Annotated[
        str | None,
        typer.Option(help="Print the shipped snippet instead: magento (.phtml) or shopify."),
    ] = None,
    trust_anchors: TrustAnchorsOption = None,
    inventory_path: InventoryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Storefront disclosure markup (data-synthetic, aria-describedby) for an image.

    \b
    Examples:
      provenance disclosure signed/shoe.jpg --src /media/shoe.jpg --alt "Red trail shoe"
      provenance disclosure signed/shoe.jpg --format json --trust-anchors ca.pem
      provenance disclosure --template magento > view/frontend/templates/disclosure.phtml
    """
    from provenance._core.disclosure import disclosure_for, render_html

    if template is not None:
        if template not in _TEMPLATES:
            fail("--template: say magento or shopify")
        folder, name = _TEMPLATES[template]
        resource = importlib.resources.files("provenance") / "templates" / folder / name
        sys.stdout.write(resource.read_text(encoding="utf-8"))
        return
    if file is None:
        fail("give an image or a record JSON file, or --template magento|shopify")
    kind = "json" if as_json else output_format.lower()
    if kind not in ("html", "json"):
        fail("--format: say html or json")
    subject: Verdict | ProvenanceRecord
    if file.suffix.lower() == ".json":
        subject = load_record(file)
    else:
        from provenance.verify import verify  # here: the command line starts without c2pa

        policy = trust_policy(trust_anchors)
        with closing(existing_inventory(inventory_path)) as inventory:
            subject = verify(file, trust=policy, inventory=inventory)
    disclosure = disclosure_for(subject)
    default_src = file.name.removesuffix(".json") if file.suffix.lower() == ".json" else file.name
    markup = render_html(disclosure, src=src if src is not None else default_src, alt=alt)
    if kind == "json":
        print_json({"path": str(file), **disclosure.to_dict(), "html": markup})
    else:
        sys.stdout.write(markup + "\n")
