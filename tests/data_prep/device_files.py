"""Writers of small wearable-device recordings in their real on-disk formats, for the tests.

- `write_cwa`: Axivity AX3/AX6 `.cwa` (OpenMovement's published block layout, `cwa.h`): a
  1024-byte "MD" header, then 512-byte "AX" data blocks of little-endian fields, unpacked 16-bit
  samples (AX3: x, y, z at 1/256 g; AX6: gyro x, y, z then acc x, y, z, the scales coded in the
  light word) and a 16-bit word checksum that makes the block's 256 words sum to zero.
- `write_geneactiv_bin`: GENEActiv `.bin`, a text file: a 59-line header (the calibration gains
  and offsets on lines 48-53, the page count on line 58) and 10-line pages of 300 samples, each
  sample 12 hexadecimal digits (12-bit two's complement x, y, z, then light and button).
- `write_gt3x`: ActiGraph `.gt3x` (version 2), a zip of `info.txt` ("Key: value" lines, times
  in .NET ticks) and `log.bin`, records of a 0x1E sync byte, type, Unix-seconds time stamp,
  payload size, payload and a one-byte checksum (the complement of the XOR of all bytes); one
  ACTIVITY2 record (type 0x1A, int16 x, y, z per sample) per second.

Every writer takes the samples in g (and deg/s for gyro) and a start time, and is vectorised so
that multi-day files are quick to write; `write_long_cwa` writes one chunk at a time (the 7-day
file of benchmarks/bench_prep_device.py, which imports this module).
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

CWA_BLOCK = 512
CWA_HEADER = 1024
AX3_UNIT = 256  # counts per g of unpacked AX3 samples
AX3_BLOCK_SAMPLES = 80  # unpacked 16-bit x, y, z samples in a block
AX6_ACC_CODE, AX6_GYRO_CODE = 3, 2  # acc 1 << (8 + 3) = 2048 counts per g; gyro 8000 >> 2 dps
AX6_ACC_UNIT = 1 << (8 + AX6_ACC_CODE)
AX6_GYRO_UNIT = 32768 / (8000 / (1 << AX6_GYRO_CODE))  # counts per deg/s
GENEACTIV_UNIT = 256  # counts per g with gain 25600 and offset 0
GT3X_SCALE = 256.0
_EPOCH = dt.datetime(1970, 1, 1)

_CWA_BLOCK_DTYPE = np.dtype(
    {
        "names": [
            "header",
            "length",
            "fractional",
            "session",
            "sequence",
            "timestamp",
            "light",
            "temperature",
            "events",
            "battery",
            "rate",
            "axes",
            "offset",
            "count",
        ],
        "formats": [
            "S2",
            "<u2",
            "<u2",
            "<u4",
            "<u4",
            "<u4",
            "<u2",
            "<u2",
            "u1",
            "u1",
            "u1",
            "u1",
            "<i2",
            "<u2",
        ],
        "offsets": [0, 2, 4, 6, 10, 14, 18, 20, 22, 23, 24, 25, 26, 28],
        "itemsize": CWA_BLOCK,
    }
)


def _seconds(start: dt.datetime) -> int:
    """Whole seconds of a naive device-clock time since 1970-01-01."""
    if start.tzinfo is not None or start.microsecond:
        raise ValueError("device clocks are naive and these writers start on a whole second")
    return int((start - _EPOCH).total_seconds())


def cwa_time(seconds: np.ndarray) -> np.ndarray:
    """OpenMovement's packed date-time: (year-2000)<<26 | month<<22 | day<<17 | h<<12 | m<<6 | s."""
    t = np.asarray(seconds, dtype="datetime64[s]")
    year = t.astype("datetime64[Y]").astype(np.int64) + 1970
    month = t.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (t.astype("datetime64[D]") - t.astype("datetime64[M]")).astype(np.int64) + 1
    sec = (t - t.astype("datetime64[D]")).astype(np.int64)
    packed = (
        ((year - 2000) << 26)
        | (month << 22)
        | (day << 17)
        | ((sec // 3600) << 12)
        | ((sec // 60 % 60) << 6)
        | (sec % 60)
    )
    return packed.astype(np.uint32)


def _cwa_rate_code(rate_hz: float) -> int:
    """Rate byte: frequency 3200 / 2**(15 - low nibble) Hz, range +-8 g (16 >> 1) in bits 6-7."""
    nibble = 15 - np.log2(3200 / rate_hz)
    if nibble != round(nibble) or not 0 <= nibble <= 15:
        raise ValueError(f"{rate_hz} Hz is not a CWA rate (3200 / 2**k Hz)")
    return 0x40 | int(nibble)


def _cwa_header(start_s: int, end_s: int, rate_code: int, device_id: int, ax6: bool) -> bytes:
    head = np.zeros(CWA_HEADER, dtype=np.uint8)
    fields = [
        (0, "S2", b"MD"),
        (2, "<u2", CWA_HEADER - 4),
        (4, "u1", 0x64 if ax6 else 0x17),
        (5, "<u2", device_id),
        (7, "<u4", 1),
        (13, "<u4", cwa_time([start_s])[0]),
        (17, "<u4", cwa_time([end_s])[0]),
        (36, "u1", rate_code),
        (41, "u1", 45),
    ]
    for offset, fmt, value in fields:
        raw = np.array([value], dtype=fmt).view(np.uint8)
        head[offset : offset + raw.size] = raw
    return head.tobytes()


def cwa_blocks(
    acc: np.ndarray,
    rate_hz: float,
    start_s: int,
    gyro: np.ndarray | None = None,
    first_block: int = 0,
    session_id: int = 1,
) -> bytes:
    """The data blocks of `acc` [T, 3] g (and `gyro` [T, 3] deg/s: an AX6) from `start_s`.

    `first_block` numbers the blocks (sequence id) when a long recording is written in parts.
    """
    ax6 = gyro is not None
    per_block = 40 if ax6 else AX3_BLOCK_SAMPLES
    scaled = np.hstack([gyro * AX6_GYRO_UNIT, acc * AX6_ACC_UNIT]) if ax6 else acc * AX3_UNIT
    counts = np.clip(np.round(scaled), -32768, 32767).astype("<i2")
    n = -(-len(counts) // per_block)
    blocks = np.zeros(n, dtype=_CWA_BLOCK_DTYPE)
    index = first_block + np.arange(n)
    block_start = start_s + index * (per_block / rate_hz)  # seconds of each block's first sample
    whole = np.ceil(block_start - 1e-9)
    blocks["header"] = b"AX"
    blocks["length"] = CWA_BLOCK - 4
    blocks["session"] = session_id
    blocks["sequence"] = index
    blocks["timestamp"] = cwa_time(whole.astype(np.int64))
    blocks["offset"] = np.round((whole - block_start) * rate_hz)  # sample at the whole second
    light = 0x0100 | ((AX6_ACC_CODE << 13) | (AX6_GYRO_CODE << 10) if ax6 else 0)
    blocks["light"] = light
    blocks["temperature"] = (20500 + 25_000) // 150  # 25 degC in the device's 10-bit code
    blocks["battery"] = 200
    blocks["rate"] = _cwa_rate_code(rate_hz)
    blocks["axes"] = 0x62 if ax6 else 0x32  # axes in the high nibble, 2 = unpacked 16-bit
    blocks["count"] = per_block
    blocks["count"][-1] = len(counts) - (n - 1) * per_block
    raw = blocks.view(np.uint8).reshape(n, CWA_BLOCK)
    padded = np.zeros((n * per_block, counts.shape[1]), dtype="<i2")
    padded[: len(counts)] = counts
    raw[:, 30 : 30 + 480] = padded.reshape(n, -1).view(np.uint8)
    words = raw.view("<u2")
    words[:, 255] = (-words[:, :255].sum(axis=1, dtype=np.int64)) & 0xFFFF
    return raw.tobytes()


def write_cwa(
    path: Path,
    acc: np.ndarray,
    rate_hz: float = 100.0,
    start: dt.datetime = dt.datetime(2024, 3, 1, 10, 0, 0),
    gyro: np.ndarray | None = None,
    device_id: int = 4321,
) -> Path:
    """An Axivity `.cwa` holding `acc` [T, 3] in g (AX6 when `gyro` [T, 3] deg/s is given)."""
    start_s = _seconds(start)
    end_s = start_s + int(np.ceil(len(acc) / rate_hz))
    head = _cwa_header(start_s, end_s, _cwa_rate_code(rate_hz), device_id, gyro is not None)
    Path(path).write_bytes(head + cwa_blocks(acc, rate_hz, start_s, gyro))
    return Path(path)


def write_long_cwa(
    path: Path,
    chunks: Iterable[np.ndarray],
    n_samples: int,
    rate_hz: float = 100.0,
    start: dt.datetime = dt.datetime(2024, 3, 1, 10, 0, 0),
    device_id: int = 4321,
) -> Path:
    """An AX3 `.cwa` of `n_samples` written chunk by chunk (each [t, 3] g), so that a multi-day
    recording never exists whole in memory; every chunk but the last holds a multiple of the
    80 samples of a block."""
    start_s = _seconds(start)
    end_s = start_s + int(np.ceil(n_samples / rate_hz))
    written = 0
    with open(path, "wb") as out:
        out.write(_cwa_header(start_s, end_s, _cwa_rate_code(rate_hz), device_id, ax6=False))
        for chunk in chunks:
            if written % AX3_BLOCK_SAMPLES:
                raise ValueError(f"a chunk follows {written} samples, not whole blocks of 80")
            out.write(cwa_blocks(chunk, rate_hz, start_s, first_block=written // AX3_BLOCK_SAMPLES))
            written += len(chunk)
    if written != n_samples:
        raise ValueError(f"the chunks held {written} samples, not {n_samples}")
    return Path(path)


def _geneactiv_header(start: dt.datetime, rate_hz: float, pages: int) -> list[str]:
    when = start.strftime("%Y-%m-%d %H:%M:%S:000")
    lines = [
        "Device Identity",
        "Device Unique Serial Code:054321",
        "Device Type:GENEActiv",
        "Device Model:1.1",
        "Device Firmware:Ver06.17 15June2016",
        f"Calibration Date:{when}",
        "",
        "Device Capabilities",
        "Accelerometer Range:-8 to 8",
        "Accelerometer Resolution:0.0039",
        "Accelerometer Units:g",
        "Light Meter Range:0 to 3000",
        "Light Meter Resolution:5",
        "Light Meter Units:lux",
        "Temperature Sensor Range:0 to 60",
        "Temperature Sensor Resolution:0.25",
        "Temperature Sensor Units:deg. C",
        "",
        "Configuration Info",
        f"Measurement Frequency:{rate_hz:g} Hz",
        "Measurement Period:168 Hours",
        f"Start Time:{when}",
        "Study Centre:harkd",
        "Study Code:tests",
        "Investigator ID:",
        "Exercise Type:",
        "Config Operator ID:",
        f"Config Time:{when}",
        "Config Notes:",
        "",
        "Trial Info",
        "Study Centre:harkd",
        "Study Code:tests",
        "Investigator ID:",
        "Exercise Type:",
        "",
        "Subject Info",
        "Subject Code:",
        "Date of Birth:",
        "Sex:",
        "Height:",
        "Weight:",
        "Handedness Code:",
        "Device Location Code:left wrist",
        "Subject Notes:",
        "",
    ]
    lines += ["Calibration Data"]
    lines += [f"{a} {k}:{v}" for a in "xyz" for k, v in (("gain", 25600), ("offset", 0))]
    lines += ["Volts:300", "Lux:800", "", "Memory Status", f"Number of Pages:{pages}", ""]
    assert len(lines) == 59 and lines[46] == "Calibration Data"
    return lines


def write_geneactiv_bin(
    path: Path,
    acc: np.ndarray,
    rate_hz: float = 100.0,
    start: dt.datetime = dt.datetime(2024, 3, 1, 10, 0, 0),
) -> Path:
    """A GENEActiv `.bin` holding `acc` [T, 3] in g (T a whole number of 300-sample pages)."""
    if len(acc) % 300:
        raise ValueError("GENEActiv pages hold 300 samples each")
    counts = np.clip(np.round(acc * GENEACTIV_UNIT), -2048, 2047).astype(np.int64) & 0xFFF
    light = np.full((len(acc), 1), 0x0A0, dtype=np.int64)  # light 40, button off
    words = np.hstack([counts, light]).reshape(-1, 300 * 4)
    digits = np.array(list("0123456789ABCDEF"))
    hexes = digits[(words[..., None] >> np.array([8, 4, 0])) & 0xF].reshape(len(words), -1)
    pages = len(words)
    lines = _geneactiv_header(start, rate_hz, pages)
    for k in range(pages):
        when = start + dt.timedelta(seconds=k * 300 / rate_hz)
        lines += [
            "Recorded Data",
            "Device Unique Serial Code:054321",
            f"Sequence Number:{k}",
            f"Page Time:{when.strftime('%Y-%m-%d %H:%M:%S')}:{when.microsecond // 1000:03d}",
            "Unassigned:",
            "Temperature:25.0",
            "Battery voltage:4.0",
            "Device Status:Recording",
            f"Measurement Frequency:{rate_hz:g}",
            "".join(hexes[k]),
        ]
    Path(path).write_text("\r\n".join(lines) + "\r\n", encoding="ascii")
    return Path(path)


def _dotnet_ticks(seconds: int) -> int:
    return seconds * 10_000_000 + 621_355_968_000_000_000


def gt3x_log(acc: np.ndarray, rate_hz: int, start_s: int) -> bytes:
    """log.bin: one ACTIVITY2 record (int16 x, y, z at `GT3X_SCALE` counts per g) per second."""
    per_second = int(rate_hz)
    if len(acc) % per_second:
        raise ValueError("write whole seconds of samples")
    counts = np.clip(np.round(acc * GT3X_SCALE), -32768, 32767).astype("<i2")
    out = io.BytesIO()
    for k, second in enumerate(counts.reshape(-1, per_second * 3)):
        payload = second.tobytes()
        header = bytes([0x1E, 0x1A]) + (start_s + k).to_bytes(4, "little")
        header += len(payload).to_bytes(2, "little")
        record = header + payload
        checksum = ~np.bitwise_xor.reduce(np.frombuffer(record, dtype=np.uint8)) & 0xFF
        out.write(record + bytes([checksum]))
    return out.getvalue()


def write_gt3x(
    path: Path,
    acc: np.ndarray,
    rate_hz: int = 100,
    start: dt.datetime = dt.datetime(2024, 3, 1, 10, 0, 0),
) -> Path:
    """An ActiGraph `.gt3x` (version 2: info.txt + log.bin) holding `acc` [T, 3] in g."""
    start_s = _seconds(start)
    stop_s = start_s + len(acc) // rate_hz
    info = "\r\n".join(
        [
            "Serial Number: MOS2E22180349",
            "Device Type: wGT3XBT",
            "Firmware: 1.9.2",
            "Battery Voltage: 4.10",
            f"Sample Rate: {rate_hz}",
            f"Start Date: {_dotnet_ticks(start_s)}",
            f"Stop Date: {_dotnet_ticks(stop_s)}",
            f"Last Sample Time: {_dotnet_ticks(stop_s)}",
            "TimeZone: 00:00:00",
            f"Download Date: {_dotnet_ticks(stop_s)}",
            "Board Revision: 4",
            "Unexpected Resets: 0",
            f"Acceleration Scale: {GT3X_SCALE}",
            "Acceleration Min: -8.0",
            "Acceleration Max: 8.0",
            "Subject Name: tests",
        ]
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("info.txt", info)
        zf.writestr("log.bin", gt3x_log(acc, rate_hz, start_s))
    return Path(path)
