#!/usr/bin/python3
"""Small DICOM fixtures for tests/data/test_dicom.cpp, one per transfer syntax and error case.

Run with Debian's /usr/bin/python3 (pydicom 2.3, numpy) and the DCMTK command-line tools:
    /usr/bin/python3 tests/data/make_dicom_fixtures.py
pydicom writes the uncompressed originals; dcmconv / dcmcrle / dcmcjpeg / dcmcjpls re-encode
them. The stored values each file must decode to are written beside them as .arr files (format in
make_resize_reference.py): the generated arrays for lossless syntaxes; for JPEG baseline,
pydicom's own decode (Pillow), i.e. what the notebook's pixel_array would give.
"""
import os
import shutil
import struct
import subprocess
import tempfile

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000, JPEG2000Lossless,
                         SecondaryCaptureImageStorage, generate_uid)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "data", "dicom")
DTYPES = {np.dtype(np.float32): 1, np.dtype(np.uint8): 2, np.dtype(np.int32): 3,
          np.dtype(np.uint16): 5}


def save_array(name, array, folder=None):
    array = np.ascontiguousarray(array)
    with open(os.path.join(folder or OUT, name), "wb") as f:
        f.write(b"PNA1" + struct.pack("<II", DTYPES[array.dtype], array.ndim))
        f.write(struct.pack("<%dI" % array.ndim, *array.shape))
        f.write(array.astype(array.dtype.newbyteorder("<")).tobytes())


def patterns():
    r = np.arange(48, dtype=np.int64)[:, None]
    c = np.arange(64, dtype=np.int64)[None, :]
    ro = np.arange(47, dtype=np.int64)[:, None]
    co = np.arange(63, dtype=np.int64)[None, :]
    return {
        # 8-bit with full range and texture: every value 0..255 somewhere.
        "u8": ((r * 64 + c) * 7 % 256).astype(np.uint16),
        "u8_odd": ((ro * 29 + co * 13 + ro * co) % 256).astype(np.uint16),
        # smooth 8-bit for lossy JPEG
        "u8_smooth": (20 + r * 2 + c * 2).astype(np.uint16),
        "u12": ((r * 64 + c) * 1337 % 4096).astype(np.uint16),
        "u12_smooth": (100 + r * 40 + c * 30).astype(np.uint16),
        "u16": ((r * 64 + c) * 20011 % 65536).astype(np.uint16),
    }


def dataset(pixels, bits_stored, photometric="MONOCHROME2", samples=1, frames=None, signed=False,
            transfer_syntax=ExplicitVRLittleEndian):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[str(pixels.shape), str(bits_stored), photometric])
    meta.TransferSyntaxUID = transfer_syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    ds.is_little_endian = True
    ds.is_implicit_VR = transfer_syntax == ImplicitVRLittleEndian
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.PatientID = "fixture"
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    if samples > 1:
        ds.PlanarConfiguration = 0
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.Rows, ds.Columns = pixels.shape[-3 if samples > 1 else -2], pixels.shape[-2 if samples > 1 else -1]
    allocated = 8 if bits_stored <= 8 else 16
    ds.BitsAllocated = allocated
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    dtype = np.uint8 if allocated == 8 else (np.int16 if signed else np.uint16)
    ds.PixelData = pixels.astype(dtype).tobytes()
    return ds


def run(*command):
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        os.remove(os.path.join(OUT, name))
    p = patterns()
    for name in ("u8", "u8_odd", "u12", "u16"):
        save_array("expected_%s.arr" % name, p[name])
    tmp = tempfile.mkdtemp()

    def write(name, ds):
        path = os.path.join(OUT, name)
        ds.save_as(path, write_like_original=False)
        return path

    def original(name, pattern, bits):
        path = os.path.join(tmp, name)
        dataset(p[pattern], bits).save_as(path, write_like_original=False)
        return path

    # Uncompressed.
    write("u8_implicit_le.dcm", dataset(p["u8"], 8, transfer_syntax=ImplicitVRLittleEndian))
    src_u8 = write("u8_explicit_le.dcm", dataset(p["u8"], 8))
    write("u8_odd_explicit_le.dcm", dataset(p["u8_odd"], 8))
    src_u12 = write("u12_explicit_le.dcm", dataset(p["u12"], 12))
    src_u16 = write("u16_explicit_le.dcm", dataset(p["u16"], 16))
    write("u8_monochrome1.dcm", dataset(p["u8"], 8, photometric="MONOCHROME1"))
    write("u12_monochrome1.dcm", dataset(p["u12"], 12, photometric="MONOCHROME1"))
    run("dcmconv", "+tb", src_u8, os.path.join(OUT, "u8_explicit_be.dcm"))
    run("dcmconv", "+tb", src_u16, os.path.join(OUT, "u16_explicit_be.dcm"))
    run("dcmconv", "+td", src_u8, os.path.join(OUT, "u8_deflated.dcm"))
    # RLE lossless.
    run("dcmcrle", src_u8, os.path.join(OUT, "u8_rle.dcm"))
    run("dcmcrle", os.path.join(OUT, "u8_odd_explicit_le.dcm"), os.path.join(OUT, "u8_odd_rle.dcm"))
    run("dcmcrle", src_u16, os.path.join(OUT, "u16_rle.dcm"))
    # JPEG lossless (process 14, first-order prediction SV1, and any selection value).
    run("dcmcjpeg", "+e1", src_u8, os.path.join(OUT, "u8_jpeg_lossless_sv1.dcm"))
    run("dcmcjpeg", "+el", src_u12, os.path.join(OUT, "u12_jpeg_lossless.dcm"))
    run("dcmcjpeg", "+e1", src_u16, os.path.join(OUT, "u16_jpeg_lossless_sv1.dcm"))
    # JPEG-LS lossless and near-lossless (|error| <= NEAR = 2).
    run("dcmcjpls", "+el", src_u8, os.path.join(OUT, "u8_jpegls_lossless.dcm"))
    run("dcmcjpls", "+el", src_u16, os.path.join(OUT, "u16_jpegls_lossless.dcm"))
    run("dcmcjpls", "+en", "+md", "2", src_u8, os.path.join(OUT, "u8_jpegls_near2.dcm"))
    # Lossy JPEG: baseline 8-bit (the RSNA files' syntax) and extended 12-bit.
    # +sr keeps stored values (the default +sp stretches min..max to the full range).
    smooth8 = original("u8_smooth.dcm", "u8_smooth", 8)
    run("dcmcjpeg", "+eb", "+q", "95", "+sr", smooth8, os.path.join(OUT, "u8_jpeg_baseline.dcm"))
    baseline = pydicom.dcmread(os.path.join(OUT, "u8_jpeg_baseline.dcm")).pixel_array  # Pillow
    save_array("expected_u8_jpeg_baseline.arr", baseline.astype(np.uint16))
    save_array("expected_u8_smooth.arr", p["u8_smooth"])
    # Texture at quality 75: visibly lossy, so the comparison with pydicom's decode means something.
    run("dcmcjpeg", "+eb", "+q", "75", "+sr", src_u8, os.path.join(OUT, "u8_jpeg_baseline_q75.dcm"))
    textured = pydicom.dcmread(os.path.join(OUT, "u8_jpeg_baseline_q75.dcm")).pixel_array
    save_array("expected_u8_jpeg_baseline_q75.arr", textured.astype(np.uint16))
    smooth12 = original("u12_smooth.dcm", "u12_smooth", 12)
    run("dcmcjpeg", "+ee", "+q", "95", "+sr", smooth12, os.path.join(OUT, "u12_jpeg_extended.dcm"))
    save_array("expected_u12_smooth.arr", p["u12_smooth"])

    # Errors.
    rgb = np.stack([p["u8"], p["u8"][::-1], p["u8"][:, ::-1]], axis=-1)
    write("error_rgb.dcm", dataset(rgb, 8, photometric="RGB", samples=3))
    write("error_multiframe.dcm", dataset(np.stack([p["u8"], p["u8"]]), 8, frames=2))
    write("error_signed.dcm", dataset(p["u12"].astype(np.int16) - 2048, 12, signed=True))
    with open(src_u8, "rb") as f:
        whole = f.read()
    with open(os.path.join(OUT, "error_truncated.dcm"), "wb") as f:
        f.write(whole[: len(whole) // 2])
    with open(os.path.join(OUT, "error_not_dicom.dcm"), "w") as f:
        f.write("patientId,x,y,width,height,Target\nthis is not a DICOM file\n")
    j2k = dataset(p["u8"], 8, transfer_syntax=JPEG2000Lossless)
    j2k.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\0" * 60])  # codestream start, no codec
    j2k["PixelData"].VR = "OB"
    j2k.is_implicit_VR = False
    write("error_jpeg2000.dcm", j2k)

    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print("wrote %d files, %d bytes" % (len(os.listdir(OUT)), total))
    for name in sorted(os.listdir(OUT)):
        if name.endswith(".dcm") and not name.startswith("error_not"):
            try:
                ds = pydicom.dcmread(os.path.join(OUT, name))
                print(name, ds.file_meta.TransferSyntaxUID.name)
            except Exception as error:  # truncated
                print(name, "unreadable:", type(error).__name__)


MATRIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "data", "dicom_matrix")
KINDS = {"u8": (8, False), "s8": (8, True), "u12": (12, False), "s12": (12, True), "u16": (16, False),
         "s16": (16, True)}


def matrix_pattern(kind, smooth=False):
    """(16,24) stored values covering the kind's range, its extremes in the first two pixels."""
    bits, signed = KINDS[kind]
    lowest = -(1 << (bits - 1)) if signed else 0
    levels = 1 << bits
    r = np.arange(16, dtype=np.int64)[:, None]
    c = np.arange(24, dtype=np.int64)[None, :]
    if smooth:  # a ramp with mild texture, for the lossy codecs
        values = (r * 24 + c) * (levels - 1) // (16 * 24) + ((r * 7 + c * 3) % 5) * (levels // 256)
        values = np.clip(values, 0, levels - 1)
    else:
        values = (r * 24 + c) * (levels // 3 + 7) % levels
        values[0, 0], values[0, 1] = 0, levels - 1
    return values + lowest


def map_to_unit(stored, ds):
    """data/input/decoding.md's mapping, written independently of data/input/dicom.cpp: stored -> [0,1] float32."""
    bits = int(ds.BitsStored)
    signed = int(ds.PixelRepresentation) == 1
    monochrome1 = ds.PhotometricInterpretation == "MONOCHROME1"
    slope = float(ds.get("RescaleSlope", 1.0))
    intercept = float(ds.get("RescaleIntercept", 0.0))
    windowed = "WindowCenter" in ds and "WindowWidth" in ds
    stored = stored.astype(np.int64)
    if not signed and not windowed and slope == 1 and intercept == 0:  # plain: v / (2^b - 1)
        highest = np.float32((1 << bits) - 1)
        value = np.float32(highest) - stored.astype(np.float32) if monochrome1 else stored.astype(np.float32)
        return (value / highest).astype(np.float32)
    x = stored.astype(np.float64) * slope + intercept
    if windowed:
        center = float(ds.WindowCenter if not ds["WindowCenter"].VM > 1 else ds.WindowCenter[0])
        width = float(ds.WindowWidth if not ds["WindowWidth"].VM > 1 else ds.WindowWidth[0])
        function = ds.get("VOILUTFunction", "LINEAR")
        if function == "SIGMOID":
            y = 1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))
        elif function == "LINEAR_EXACT" or width == 1:
            y = (x - (center - width / 2)) / width
        else:
            y = (x - (center - 0.5)) / (width - 1) + 0.5
    else:
        lowest = -(2.0 ** (bits - 1)) if signed else 0.0
        highest = lowest + 2.0 ** bits - 1
        a, b = lowest * slope + intercept, highest * slope + intercept
        y = (x - min(a, b)) / abs(b - a)
    y = np.clip(y, 0.0, 1.0)
    return (1.0 - y if monochrome1 else y).astype(np.float32)


def matrix():
    """tests/fixtures/data/dicom_matrix/: 24x16 files for every supported syntax x pixel kind, each
    with <name>.arr = its [0,1] pixels computed from an independent decoder's stored values
    (pydicom: numpy / RLE / Pillow handlers; DCMTK's dcmdjpeg / dcmdjpls command-line decoders
    where pydicom has no decoder: JPEG 12-bit, lossless and JPEG-LS) through map_to_unit, and
    manifest.txt: file, allowed error in [0,1] units (0 lossless; lossy: against the independent
    decoder of the same stream), decoder, description."""
    os.makedirs(MATRIX, exist_ok=True)
    for name in os.listdir(MATRIX):
        os.remove(os.path.join(MATRIX, name))
    tmp = tempfile.mkdtemp()
    manifest = []

    def source(name, kind, smooth=False, photometric="MONOCHROME2", tags=None):
        bits, signed = KINDS[kind]
        values = matrix_pattern(kind, smooth)
        ds = dataset(values, bits, photometric=photometric, signed=signed)
        for key, value in (tags or {}).items():
            setattr(ds, key, value)
        path = os.path.join(tmp, name + ".src.dcm")
        ds.save_as(path, write_like_original=False)
        return path, values

    def stored_by(path, decoder):
        if decoder == "pydicom":
            return pydicom.dcmread(path).pixel_array
        plain = os.path.join(tmp, os.path.basename(path) + ".plain.dcm")
        run(decoder, path, plain)
        return pydicom.dcmread(plain).pixel_array

    def add(name, path, decoder, values, lossy_levels=0, description=""):
        final = os.path.join(MATRIX, name + ".dcm")
        if path.endswith(".src.dcm"):
            shutil.copy(path, final)  # the source itself is the fixture (and may be re-encoded next)
        elif path != final:
            os.replace(path, final)
        ds = pydicom.dcmread(final)
        stored = np.asarray(stored_by(final, decoder)).astype(np.int64)
        if lossy_levels == 0:
            assert np.array_equal(stored, values), name  # lossless: the decoder gives the source back
        else:
            print("%s: lossy, max |decoded - source| = %d stored levels" % (name, np.abs(stored - values).max()))
        save_array(name + ".arr", map_to_unit(stored, ds), MATRIX)
        # Allowed error in [0,1] units: lossy_levels stored levels through the file's mapping.
        unit = float(np.max(np.abs(map_to_unit(np.array([1]), ds) - map_to_unit(np.array([0]), ds))))
        manifest.append("%s.dcm %.9g %s %s" % (name, lossy_levels * unit, decoder, description))

    for kind in KINDS:
        bits, signed = KINDS[kind]
        src, values = source(kind, kind)
        explicit = os.path.join(MATRIX, kind + "_explicit_le.dcm")
        shutil.copy(src, explicit)
        add(kind + "_explicit_le", explicit, "pydicom", values, description="explicit VR little endian")
        for flag, suffix, text in (("+ti", "implicit_le", "implicit VR little endian"),
                                   ("+tb", "explicit_be", "explicit VR big endian")):
            out = os.path.join(tmp, "%s_%s.dcm" % (kind, suffix))
            run("dcmconv", flag, src, out)
            add("%s_%s" % (kind, suffix), out, "pydicom", values, description=text)
        out = os.path.join(tmp, kind + "_rle.dcm")
        run("dcmcrle", src, out)
        add(kind + "_rle", out, "pydicom", values, description="RLE lossless")
        out = os.path.join(tmp, kind + "_jpeg_lossless_sv1.dcm")
        run("dcmcjpeg", "+e1", src, out)
        add(kind + "_jpeg_lossless_sv1", out, "dcmdjpeg", values, description="JPEG lossless process 14 SV1")
        out = os.path.join(tmp, kind + "_jpegls_lossless.dcm")
        run("dcmcjpls", "+el", src, out)
        add(kind + "_jpegls_lossless", out, "dcmdjpls", values, description="JPEG-LS lossless")
        add(kind + "_j2k_lossless", jpeg2000(src, values, bits, signed, tmp, lossy=False), "pydicom", values,
            description="JPEG 2000 lossless (OpenJPEG opj_compress, reversible 5/3)")
        smooth_src, smooth = source(kind + "_smooth", kind, smooth=True)
        add(kind + "_j2k_lossy", jpeg2000(smooth_src, smooth, bits, signed, tmp, lossy=True), "pydicom", smooth,
            lossy_levels=1, description="JPEG 2000 lossy (opj_compress -I -r 8, irreversible 9/7)")

    # Unsigned-only syntaxes (DCMTK's lossy JPEG encoder turns signed input unsigned).
    src8, smooth8 = source("u8_smooth", "u8", smooth=True)
    out = os.path.join(tmp, "u8_jpeg_baseline.dcm")
    run("dcmcjpeg", "+eb", "+q", "90", "+sr", src8, out)
    add("u8_jpeg_baseline", out, "pydicom", smooth8, lossy_levels=1, description="JPEG baseline (dcmcjpeg +eb)")
    out = os.path.join(tmp, "u8_jpeg_extended.dcm")
    run("dcmcjpeg", "+ee", "+q", "90", "+sr", src8, out)
    add("u8_jpeg_extended", out, "pydicom", smooth8, lossy_levels=1, description="JPEG extended 8-bit (dcmcjpeg +ee)")
    # img2dcm wraps a JPEG file as it is (here one Pillow wrote): baseline from another encoder.
    from PIL import Image as PilImage
    jpeg = os.path.join(tmp, "u8_pillow.jpg")
    PilImage.fromarray(smooth8.astype(np.uint8), mode="L").save(jpeg, quality=85)
    out = os.path.join(tmp, "u8_img2dcm_baseline.dcm")
    run("img2dcm", jpeg, out)
    add("u8_img2dcm_baseline", out, "pydicom", smooth8, lossy_levels=1,
        description="JPEG baseline from Pillow's encoder, wrapped by img2dcm")
    src12, smooth12 = source("u12_smooth", "u12", smooth=True)
    out = os.path.join(tmp, "u12_jpeg_extended.dcm")
    run("dcmcjpeg", "+ee", "+q", "90", "+sr", src12, out)
    add("u12_jpeg_extended", out, "dcmdjpeg", smooth12, lossy_levels=1, description="JPEG extended 12-bit")
    for kind in ("u8", "u12", "u16"):
        src, values = source(kind + "_sv", kind)
        out = os.path.join(tmp, kind + "_jpeg_lossless.dcm")
        run("dcmcjpeg", "+el", "+sv", "4", src, out)
        add(kind + "_jpeg_lossless", out, "dcmdjpeg", values, description="JPEG lossless process 14, predictor 4")
    for kind in ("u8", "u12"):  # DCMTK refuses signed near-lossless input
        src, values = source(kind + "_near", kind, smooth=True)
        out = os.path.join(tmp, kind + "_jpegls_near2.dcm")
        run("dcmcjpls", "+en", "+md", "2", src, out)
        add(kind + "_jpegls_near2", out, "dcmdjpls", values, lossy_levels=1, description="JPEG-LS near-lossless NEAR=2")

    # Photometric and value transforms.
    for kind in ("u8", "s12"):
        src, values = source(kind + "_mono1", kind, photometric="MONOCHROME1")
        add(kind + "_monochrome1", src, "pydicom", values, description="MONOCHROME1")
    src, values = source("s16_mono1", "s16", photometric="MONOCHROME1")
    add("s16_monochrome1_j2k", jpeg2000(src, values, 16, True, tmp, lossy=False), "pydicom", values,
        description="MONOCHROME1, JPEG 2000 lossless")
    ct = {"RescaleSlope": "0.5", "RescaleIntercept": "-1024"}
    src, values = source("s16_rescale", "s16", tags=ct)
    add("s16_rescale", src, "pydicom", values, description="modality rescale 0.5 x - 1024, stored range")
    src, values = source("u12_window", "u12", tags={"WindowCenter": "1500", "WindowWidth": "1200"})
    add("u12_window", src, "pydicom", values, description="VOI window C=1500 W=1200 (LINEAR)")
    out = os.path.join(tmp, "u12_window_rle.dcm")
    run("dcmcrle", src, out)
    add("u12_window_rle", out, "pydicom", values, description="VOI window, RLE")
    tags = dict(ct, WindowCenter="40", WindowWidth="400")
    src, values = source("s16_rescale_window", "s16", tags=tags)
    add("s16_rescale_window", src, "pydicom", values, description="rescale then window C=40 W=400")
    out = os.path.join(tmp, "s16_rescale_window_jpegls.dcm")
    run("dcmcjpls", "+el", src, out)
    add("s16_rescale_window_jpegls", out, "dcmdjpls", values, description="rescale + window, JPEG-LS lossless")
    src, values = source("u16_sigmoid", "u16", tags={"WindowCenter": "30000", "WindowWidth": "20000",
                                                     "VOILUTFunction": "SIGMOID"})
    add("u16_window_sigmoid", src, "pydicom", values, description="VOI window, SIGMOID")
    src, values = source("s12_exact_mono1", "s12", photometric="MONOCHROME1",
                         tags={"WindowCenter": "0", "WindowWidth": "1000", "VOILUTFunction": "LINEAR_EXACT"})
    add("s12_window_exact_monochrome1", src, "pydicom", values, description="LINEAR_EXACT window, MONOCHROME1")

    with open(os.path.join(MATRIX, "manifest.txt"), "w") as f:
        f.write("# file, allowed |error| in [0,1] units, independent decoder, description"
                " (tests/data/make_dicom_fixtures.py)\n")
        f.write("\n".join(manifest) + "\n")
    total = sum(os.path.getsize(os.path.join(MATRIX, n)) for n in os.listdir(MATRIX))
    print("matrix: %d files, %d bytes" % (len(os.listdir(MATRIX)), total))


def jpeg2000(src, values, bits, signed, tmp, lossy):
    """src's pixels as a raw J2K codestream from opj_compress, encapsulated by pydicom."""
    name = os.path.basename(src).replace(".src.dcm", "") + ("_lossy" if lossy else "")
    raw = os.path.join(tmp, name + ".raw")  # OpenJPEG's .raw is big endian
    dtype = (">i2" if signed else ">u2") if bits > 8 else (np.int8 if signed else np.uint8)
    values.astype(dtype).tofile(raw)
    j2k = os.path.join(tmp, name + ".j2k")
    rows, columns = values.shape
    options = ["-n", "3"] + (["-I", "-r", "8"] if lossy else [])  # 3 resolutions: 24x16 is small
    run("opj_compress", "-i", raw, "-o", j2k, "-F", "%d,%d,1,%d,%s" % (columns, rows, bits, "s" if signed else "u"),
        *options)
    ds = pydicom.dcmread(src)
    ds.file_meta.TransferSyntaxUID = JPEG2000 if lossy else JPEG2000Lossless
    with open(j2k, "rb") as f:
        ds.PixelData = encapsulate([f.read()])
    ds["PixelData"].VR = "OB"
    ds.is_implicit_VR = False
    ds.is_little_endian = True
    if lossy:
        ds.LossyImageCompression = "01"
    out = os.path.join(tmp, name + "_j2k.dcm")
    ds.save_as(out, write_like_original=False)
    return out


if __name__ == "__main__":
    import sys
    if sys.argv[1:] != ["--matrix-only"]:
        main()
    matrix()
