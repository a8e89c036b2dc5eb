"""Hospital integration: the PACS over DICOMweb and FHIR R4 export."""
