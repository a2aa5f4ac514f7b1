"""The options of a signing, apart from the signing code (issue 20).

What this module owns: :class:`SignOptions`, re-exported as
``provenance.sign.SignOptions`` and ``provenance.SignOptions``. It lives here,
not in :mod:`provenance.sign`, so that a batch's calling process can build
the options it sends to its workers without importing the signing side (c2pa,
the containers' writers): the workers import that themselves, after they are
forked (architecture decision 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provenance._core.pii import PiiPolicy

__all__ = ["SignOptions"]


@dataclass(frozen=True, slots=True)
class SignOptions:
    """How :func:`provenance.sign` embeds provenance; the defaults are the safe ones.

    Attributes:
        pii_policy: What to do with personal data found in free text (default:
            refuse to embed it).
        write_exif: Write minimal EXIF (Software, ImageDescription, DateTime);
            when false, EXIF already in the file is still stripped of personal
            fields (GPS, serial numbers, owner).
        disclosure_text: The ImageDescription disclosure written into EXIF.
        derivation: The C2PA action recorded for a rendition of a parent.
        c2pa: Embed a C2PA manifest. False leaves the signed XMP (statement,
            detached signature, certificate chain) as the only embedded
            provenance: the compact form for renditions (see
            :func:`provenance.renditions.sign_rendition`).
        max_pixels: The decoding limit for the perceptual hashes stored with an
            inventory (default: :func:`provenance.fingerprint.max_pixels`). An
            image above it is refused before anything is written.
    """

    pii_policy: PiiPolicy = field(default_factory=PiiPolicy)
    write_exif: bool = True
    disclosure_text: str = "AI-generated image"
    derivation: str = "c2pa.resized"
    c2pa: bool = True
    max_pixels: int | None = None
