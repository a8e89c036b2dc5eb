"""A throwaway Orthanc (Debian's orthanc + orthanc-dicomweb) on localhost for the PACS tests, and
generated CR/DX/CT chest studies that carry identifying values, loaded through its REST API."""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import requests

PLUGIN_DIRS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc")
USER, PASSWORD = "medal-test", "orthanc-test-pass"
CR, DX, CT = "1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1", "1.2.840.10008.5.1.4.1.1.2"
SOP_CLASS = {"CR": CR, "DX": DX, "CT": CT}


class OrthancUnavailable(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _plugin() -> str | None:
    for folder in PLUGIN_DIRS:
        for path in sorted(Path(folder).glob("libOrthancDicomWeb.so*")):
            return str(path)
    return None


class TemporaryOrthanc:
    """Its own process, storage and config in a temp dir; never the system service."""

    def __init__(self):
        binary = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None)
        plugin = _plugin()
        if binary is None or plugin is None:
            raise OrthancUnavailable("orthanc is not installed: make system-deps installs it")
        self.binary, self.plugin = binary, plugin
        self.dir = Path(tempfile.mkdtemp(prefix="medal-orthanc-"))
        self.http_port, self.dicom_port = _free_port(), _free_port()
        self.process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb(self) -> str:
        return self.base + "/dicom-web"

    def start(self) -> "TemporaryOrthanc":
        config = {
            "Name": "medal-test",
            "StorageDirectory": str(self.dir / "storage"),
            "IndexDirectory": str(self.dir / "index"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {USER: PASSWORD},
            "Plugins": [self.plugin],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        }
        (self.dir / "orthanc.json").write_text(json.dumps(config))
        self.log = (self.dir / "orthanc.log").open("w")
        self.process = subprocess.Popen(
            [self.binary, str(self.dir / "orthanc.json")], stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise OrthancUnavailable(f"Orthanc exited: {(self.dir / 'orthanc.log').read_text()[-500:]}")
            try:
                if requests.get(self.dicomweb + "/studies", auth=(USER, PASSWORD), timeout=1).ok:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop()
        raise OrthancUnavailable("Orthanc did not answer within 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def rest(self, method: str, path: str, **kwargs) -> requests.Response:
        response = requests.request(method, self.base + path, auth=(USER, PASSWORD), timeout=30, **kwargs)
        response.raise_for_status()
        return response

    def load(self, data: bytes) -> None:
        self.rest("POST", "/instances", data=data, headers={"Content-Type": "application/dicom"})

    def clear(self) -> None:
        for study in self.rest("GET", "/studies").json():
            self.rest("DELETE", f"/studies/{study}")


@dataclass
class Study:
    """A generated study: its original identifiers (which must never reach medal's database)."""

    uid: str
    patient_id: str
    patient_name: str
    accession: str
    modalities: tuple[str, ...]
    files: list[bytes] = field(default_factory=list)

    @property
    def identifiers(self) -> list[str]:
        return [self.uid, self.patient_id, self.patient_name, self.accession]


def instance(study: Study, modality: str, seed: int, study_date: str, series_uid: str, number: int) -> bytes:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from tests.synthetic import radiograph

    pixels = radiograph(seed % 2, size=64, seed=seed)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SOP_CLASS[modality]
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study.uid, series_uid
    ds.PatientName, ds.PatientID = study.patient_name, study.patient_id
    ds.PatientBirthDate, ds.PatientSex = "19700101", "F"
    ds.AccessionNumber, ds.StudyID = study.accession, "S" + study.accession[-4:]
    ds.InstitutionName, ds.ReferringPhysicianName = "St Example Hospital", "House^Gregory"
    ds.StudyDescription = f"Chest for {study.patient_name}"
    ds.StudyDate, ds.StudyTime, ds.SeriesDate = study_date, "101500", study_date
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = modality, number, 1
    ds.BodyPartExamined = "CHEST"
    if modality != "CT":
        ds.ViewPosition = "PA"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = (pixels.astype(np.uint16) * 16).tobytes()
    ds.add_new(0x00090010, "LO", "EXAMPLE PRIVATE")
    ds.add_new(0x00091001, "LO", f"private {study.patient_id}")
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def make_study(number: int, modalities: tuple[str, ...], study_date: str = "20240315") -> Study:
    """One study; one series (one instance) per modality; identifying values unique to this study."""
    from pydicom.uid import generate_uid

    study = Study(generate_uid(), f"PID{number:05d}X", f"Patient^Number{number}", f"ACC{number:06d}9", modalities)
    for index, modality in enumerate(modalities, start=1):
        study.files.append(instance(study, modality, number * 10 + index, study_date, generate_uid(), index))
    return study
