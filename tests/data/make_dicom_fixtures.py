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
import struct
import subprocess
import tempfile

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless,
                         SecondaryCaptureImageStorage, generate_uid)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "data", "dicom")
DTYPES = {np.dtype(np.float32): 1, np.dtype(np.uint8): 2, np.dtype(np.int32): 3,
          np.dtype(np.uint16): 5}


def save_array(name, array):
    array = np.ascontiguousarray(array)
    with open(os.path.join(OUT, name), "wb") as f:
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


if __name__ == "__main__":
    main()
