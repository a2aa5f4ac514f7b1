r"""Minimal EXIF for generated images, and removal of personal EXIF fields.

EXIF here is the raw TIFF structure (starting ``II*\0`` or ``MM\0*``) without
the JPEG APP1 ``Exif\0\0`` header; the container modules add and strip that
header. Input may carry the header: it is accepted and dropped. Output is always
big-endian raw TIFF, as written by piexif.

:func:`sanitize_exif` keeps what describes the image (size, orientation, colour,
exposure, Make/Model, Copyright, ImageDescription, XPTitle/XPSubject/XPKeywords)
and removes what identifies or locates a person or a device (DESIGN.md decision
13, GDPR data minimisation):

- the whole GPS IFD;
- the IFD1 thumbnail: a stale copy of the picture that can still show what was
  cropped or retouched out of it;
- from IFD0: Artist, HostComputer, XPAuthor, XPComment, CameraSerialNumber,
  ImageID, RawDataUniqueID, OriginalRawFileName, OriginalRawFileData,
  DNGPrivateData, XMLPacket and ImageResources (embedded XMP and Photoshop/IPTC
  blocks carry creator names, contacts and locations);
- from the Exif IFD: CameraOwnerName, BodySerialNumber, LensSerialNumber,
  ImageUniqueID, UserComment and MakerNote (vendor data with serial numbers);
- every tag piexif does not know (it cannot be checked, so it is not kept), and
  every tag whose stored type disagrees with the EXIF specification (it cannot
  be re-encoded faithfully).

Untrusted bytes are walked by a bounded validator before piexif sees them: each
IFD is read at most once (an offset loop is an error, not a hang), every count is
checked against the block size before anything is read (a lying count cannot make
piexif allocate gigabytes), the values of all entries together must fit in the
block (entries sharing one large value cannot multiply the work), and the block is
capped at :data:`MAX_EXIF_BYTES`.
Whatever still goes wrong inside piexif is translated to
:class:`~provenance.errors.ContainerError` at this border.

This module is pure: bytes in, bytes out. It never touches files, clocks or c2pa.

Layout: ``_tiff`` (the bounded IFD walk and piexif at its border), ``_sanitize``
(:func:`sanitize_exif`), ``_minimal`` (the minimal EXIF of a generated image).
"""

from __future__ import annotations

from provenance._core.exif._minimal import build_minimal_exif, merge_minimal_exif
from provenance._core.exif._sanitize import SanitizedExif, sanitize_exif
from provenance._core.exif._tiff import MAX_EXIF_BYTES

__all__ = [
    "MAX_EXIF_BYTES",
    "SanitizedExif",
    "build_minimal_exif",
    "merge_minimal_exif",
    "sanitize_exif",
]
