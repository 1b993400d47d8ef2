"""Generate the fictional demo data set (app/demo/organisations.json) loaded into an empty store.

The generator is deterministic: a seeded ``random.Random``, lists only (never set iteration) and a
fixed JSON layout, so running it twice yields byte-identical output. Stdlib only.

Usage::

    python scripts/make_demo_data.py [--output PATH] [--seed N] [--quiet]

How the data is shaped, and why:

* ~300 organisations in 17 life-science regions (plus two pan-European bodies), every stakeholder
  kind and every sector present. Names, sites and people are invented; websites use ``.example``.
* Capabilities come from one catalogue (``CAPABILITIES``): each entry has an *offer* phrasing, a
  *seek* phrasing and the kinds that typically offer / seek it. Offers follow an organisation's
  sectors and kind; seeks are drawn from what *other* kinds, sectors and countries offer, so
  cross-sector, cross-region matches exist and read sensibly.
* Collaborations are mostly regional (regional projects, cluster networks, supply contracts),
  with fewer cross-border EU, Interreg and transatlantic projects: exactly the situation in which
  a cluster manager needs help finding partners outside the home region. Participation is drawn
  with heavy-tailed propensities, so university hospitals, universities and large companies
  become hubs.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_SEED = 20240124
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "app" / "demo" / "organisations.json"
FIRST_YEAR, LAST_YEAR = 2012, 2025

KINDS = (
    "sme",
    "large_company",
    "university",
    "research_organisation",
    "hospital_or_care_provider",
    "public_body",
    "patient_organisation",
    "funder_or_investor",
    "cluster_or_science_park",
    "other",
)
SECTORS = (
    "pharma",
    "biotech",
    "medtech",
    "diagnostics",
    "ehealth",
    "ai_and_data",
    "nanohealth",
    "functional_food",
    "business_services",
    "digital_therapeutics",
    "cosmetics",
    "veterinary",
)
COLLABORATION_KINDS = ("project", "publication", "supply", "membership", "event_meeting", "other")

# Short kind codes keep the catalogue tables readable.
KIND_CODES = {
    "sme": "sme",
    "lc": "large_company",
    "uni": "university",
    "rto": "research_organisation",
    "hosp": "hospital_or_care_provider",
    "pub": "public_body",
    "pat": "patient_organisation",
    "fund": "funder_or_investor",
    "clu": "cluster_or_science_park",
    "oth": "other",
}
COMPANY_KINDS = ("sme", "large_company")
TECH_KINDS = ("sme", "large_company", "university", "research_organisation")

COUNTRY_NAMES = {
    "BE": "Belgium",
    "CA": "Canada",
    "DE": "Germany",
    "DK": "Denmark",
    "EE": "Estonia",
    "ES": "Spain",
    "FR": "France",
    "GB": "the United Kingdom",
    "IE": "Ireland",
    "IT": "Italy",
    "LU": "Luxembourg",
    "NL": "the Netherlands",
    "PL": "Poland",
    "SE": "Sweden",
    "US": "the United States",
}
# Countries that take part in EU framework programmes in this data set (UK and Canada associated).
EU_PROGRAMME_WEIGHT = {"CA": 0.25, "US": 0.05}
MARKETS = (
    "the Nordic countries",
    "Germany",
    "France",
    "the UK",
    "North America",
    "Italy",
    "Spain",
    "the Benelux",
    "the Baltic states",
    "Poland",
)
MARKET_HOME = {
    "the Nordic countries": ("SE", "DK"),
    "Germany": ("DE",),
    "France": ("FR",),
    "the UK": ("GB",),
    "North America": ("CA", "US"),
    "Italy": ("IT",),
    "Spain": ("ES",),
    "the Benelux": ("BE", "NL", "LU"),
    "the Baltic states": ("EE",),
    "Poland": ("PL",),
}

SECTOR_FIELDS = {
    "pharma": "pharmaceutical sciences",
    "biotech": "biotechnology",
    "medtech": "biomedical engineering",
    "diagnostics": "laboratory medicine",
    "ehealth": "health informatics",
    "ai_and_data": "health data science",
    "nanohealth": "nanomedicine",
    "functional_food": "nutrition science",
    "business_services": "health economics",
    "digital_therapeutics": "digital mental health",
    "cosmetics": "skin biology",
    "veterinary": "veterinary medicine",
}
SECTOR_INVESTMENT = {
    "pharma": "drug development",
    "biotech": "biotech",
    "medtech": "medtech",
    "diagnostics": "diagnostics",
    "ehealth": "digital health",
    "ai_and_data": "health AI",
    "nanohealth": "nanomedicine",
    "functional_food": "food-for-health",
    "business_services": "life-science service",
    "digital_therapeutics": "digital therapeutics",
    "cosmetics": "cosmetics and dermocosmetics",
    "veterinary": "animal health",
}
SECTOR_DISEASES = {
    "pharma": (
        "heart failure",
        "type 2 diabetes",
        "rheumatoid arthritis",
        "multiple sclerosis",
        "chronic kidney disease",
        "non-small-cell lung cancer",
        "cystic fibrosis",
    ),
    "biotech": (
        "acute myeloid leukaemia",
        "glioblastoma",
        "Duchenne muscular dystrophy",
        "colorectal cancer",
        "haemophilia B",
        "pancreatic cancer",
    ),
    "medtech": (
        "heart failure",
        "atrial fibrillation",
        "osteoarthritis",
        "chronic wounds",
        "obstructive sleep apnoea",
        "stroke",
    ),
    "diagnostics": (
        "sepsis",
        "colorectal cancer",
        "tuberculosis",
        "prostate cancer",
        "urinary tract infection",
        "pre-eclampsia",
    ),
    "ehealth": (
        "COPD",
        "heart failure",
        "type 2 diabetes",
        "frailty in older adults",
        "chronic pain",
        "long COVID",
    ),
    "ai_and_data": (
        "breast cancer",
        "sepsis",
        "diabetic retinopathy",
        "Alzheimer's disease",
        "heart failure",
        "lung cancer",
    ),
    "nanohealth": (
        "glioblastoma",
        "ovarian cancer",
        "atherosclerosis",
        "bacterial biofilm infections",
        "liver fibrosis",
    ),
    "functional_food": (
        "type 2 diabetes",
        "obesity",
        "irritable bowel syndrome",
        "sarcopenia",
        "cardiovascular disease",
    ),
    "business_services": ("rare diseases", "cancer", "chronic disease"),
    "digital_therapeutics": (
        "insomnia",
        "depression",
        "generalised anxiety disorder",
        "stroke",
        "type 2 diabetes",
        "ADHD",
    ),
    "cosmetics": ("atopic dermatitis", "acne", "psoriasis", "rosacea"),
    "veterinary": (
        "bovine respiratory disease",
        "porcine diarrhoea",
        "mastitis in dairy cows",
        "avian influenza",
        "sea lice in salmon farming",
    ),
}


# --------------------------------------------------------------------------------------------
# Capability catalogue
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Capability:
    """One capability: how a provider offers it and how someone looking for it asks."""

    key: str
    sectors: tuple[str, ...]
    offered_by: tuple[str, ...]
    sought_by: tuple[str, ...]
    offers: tuple[str, ...]
    seeks: tuple[str, ...]
    keywords: tuple[str, ...]
    focus: str = ""
    product: str = ""


def _cap(
    key: str,
    *,
    sectors: str,
    offered_by: str,
    sought_by: str,
    offer: str,
    seek: str,
    keywords: str,
    focus: str = "",
    product: str = "",
) -> Capability:
    """Catalogue entry: kinds as short codes (``KIND_CODES``), phrasing variants split on ``|``."""
    return Capability(
        key=key,
        sectors=tuple(sectors.split()),
        offered_by=tuple(KIND_CODES[k] for k in offered_by.split()),
        sought_by=tuple(KIND_CODES[k] for k in sought_by.split()),
        offers=tuple(s.strip() for s in offer.split("|") if s.strip()),
        seeks=tuple(s.strip() for s in seek.split("|") if s.strip()),
        keywords=tuple(k.strip() for k in keywords.split(",")),
        focus=focus,
        product=product,
    )


# fmt: off
CAPABILITIES: tuple[Capability, ...] = (
    # -- diagnostics
    _cap("ivd_validation", sectors="diagnostics", offered_by="hosp", sought_by="sme lc rto",
         offer="clinical validation site for in-vitro diagnostics | retrospective sample cohorts "
               "for IVD performance studies under IVDR",
         seek="hospital partner for a clinical performance study of an IVD assay | clinical "
              "validation site for our point-of-care test",
         keywords="ivdr, clinical performance study, laboratory medicine"),
    _cap("poc_test", sectors="diagnostics", offered_by="sme lc", sought_by="hosp lc pub",
         offer="point-of-care immunoassay platform for sepsis and infection markers",
         seek="point-of-care test for rapid infection diagnosis in the emergency department | "
              "rapid near-patient tests for primary care",
         keywords="point-of-care, immunoassay, sepsis",
         focus="point-of-care immunoassays for sepsis and infection triage",
         product="point-of-care sepsis test kits"),
    _cap("liquid_biopsy", sectors="diagnostics biotech", offered_by="sme uni rto",
         sought_by="hosp lc sme",
         offer="cfDNA liquid biopsy assay development and NGS analysis",
         seek="liquid biopsy partner for minimal residual disease monitoring in a trial",
         keywords="liquid biopsy, ctDNA, next-generation sequencing",
         focus="cell-free DNA liquid biopsy assays for early cancer detection",
         product="ctDNA sequencing services"),
    _cap("microfluidics", sectors="diagnostics nanohealth", offered_by="sme rto",
         sought_by="sme lc",
         offer="design and prototyping of microfluidic lab-on-chip cartridges",
         seek="microfluidic cartridge design partner for a sample-to-answer test",
         keywords="microfluidics, lab-on-chip, prototyping",
         focus="microfluidic lab-on-chip cartridges for sample-to-answer testing",
         product="injection-moulded microfluidic cartridges"),
    _cap("amr_diagnostics", sectors="diagnostics", offered_by="sme", sought_by="hosp pub lc",
         offer="rapid phenotypic antimicrobial susceptibility testing in under four hours",
         seek="rapid susceptibility testing to support antimicrobial stewardship",
         keywords="antimicrobial resistance, susceptibility testing, microbiology",
         focus="rapid antimicrobial susceptibility testing for hospital laboratories",
         product="rapid AST instruments and consumables"),
    _cap("companion_dx", sectors="diagnostics pharma", offered_by="sme lc", sought_by="lc sme",
         offer="companion diagnostic co-development under IVDR",
         seek="companion diagnostic partner for a targeted oncology asset",
         keywords="companion diagnostics, ivdr, precision oncology",
         focus="companion diagnostics co-developed with drug sponsors"),
    _cap("biomarker_discovery", sectors="diagnostics biotech", offered_by="uni rto sme",
         sought_by="sme lc hosp",
         offer="mass-spectrometry proteomics for biomarker discovery and verification",
         seek="biomarker discovery collaboration in inflammatory disease | protein biomarkers to "
              "stratify patients in a clinical study",
         keywords="proteomics, biomarkers, mass spectrometry",
         focus="protein biomarker panels for patient stratification"),
    # -- AI and data
    _cap("ai_pathology", sectors="ai_and_data diagnostics", offered_by="sme",
         sought_by="hosp lc sme",
         offer="AI image analysis for pathology whole-slide images",
         seek="AI partner for automated analysis of digitised pathology slides",
         keywords="digital pathology, deep learning, whole-slide imaging",
         focus="deep-learning tools for digital pathology",
         product="AI pathology software licences"),
    _cap("ai_radiology", sectors="ai_and_data medtech", offered_by="sme lc", sought_by="hosp pub",
         offer="CE-marked AI triage for chest X-ray and CT",
         seek="AI decision support to prioritise radiology worklists",
         keywords="radiology, computer vision, triage",
         focus="AI triage software for chest X-ray and CT",
         product="AI radiology triage licences"),
    _cap("rwd_access", sectors="ai_and_data ehealth", offered_by="hosp pub rto",
         sought_by="sme lc uni",
         offer="real-world data access from pseudonymised regional health records | linked "
               "registry and hospital data for outcomes research",
         seek="real-world data access for a post-market outcomes study | registry data to build "
              "an external control arm",
         keywords="real-world data, electronic health records, registries"),
    _cap("federated_learning", sectors="ai_and_data", offered_by="sme uni",
         sought_by="hosp lc sme",
         offer="federated learning platform deployable behind hospital firewalls",
         seek="privacy-preserving way to train models across several hospitals",
         keywords="federated learning, gdpr, privacy-preserving analytics",
         focus="federated learning infrastructure for multi-hospital AI"),
    _cap("biostatistics", sectors="ai_and_data business_services", offered_by="sme",
         sought_by="sme lc hosp",
         offer="biostatistics and machine-learning analysis of clinical trial data",
         seek="biostatistics support for trial design and analysis",
         keywords="biostatistics, clinical trials, machine learning",
         focus="biostatistics and data science services for clinical studies",
         product="biostatistics and data management services"),
    _cap("omics_ai", sectors="ai_and_data biotech", offered_by="uni rto sme", sought_by="sme lc",
         offer="multi-omics data integration and target prioritisation with machine learning",
         seek="computational partner for multi-omics target discovery",
         keywords="multi-omics, target discovery, bioinformatics",
         focus="machine-learning target discovery from multi-omics data"),
    _cap("clinical_nlp", sectors="ai_and_data ehealth", offered_by="sme", sought_by="hosp lc",
         offer="NLP extraction of structured data from clinical notes in European languages",
         seek="clinical NLP to extract outcomes from free-text records",
         keywords="natural language processing, clinical notes, language models",
         focus="clinical language models for European languages"),
    _cap("data_governance", sectors="ai_and_data", offered_by="pub rto", sought_by="sme lc hosp",
         offer="expertise in EHDS and governance of secondary use of health data",
         seek="guidance on secondary use of health data under the EHDS",
         keywords="ehds, data governance, secondary use"),
    _cap("hpc", sectors="ai_and_data", offered_by="rto uni", sought_by="sme uni",
         offer="GPU and HPC compute time for life-science AI",
         seek="GPU compute capacity for training medical imaging models",
         keywords="hpc, gpu, compute"),
    # -- eHealth
    _cap("remote_monitoring", sectors="ehealth medtech", offered_by="sme lc", sought_by="hosp pub",
         offer="remote patient monitoring platform integrated with hospital EHRs",
         seek="remote monitoring solution for early discharge programmes",
         keywords="remote monitoring, telehealth, chronic disease",
         focus="remote patient monitoring for heart failure and COPD",
         product="remote monitoring service subscriptions"),
    _cap("living_lab", sectors="ehealth", offered_by="hosp pub oth", sought_by="sme lc",
         offer="living-lab pilot sites in municipal home care | test bed for telemedicine in "
               "primary care",
         seek="municipal or hospital test bed to pilot a telehealth service",
         keywords="living lab, home care, pilots"),
    _cap("interoperability", sectors="ehealth", offered_by="sme", sought_by="hosp sme lc",
         offer="HL7 FHIR integration and interoperability services",
         seek="FHIR integration partner to connect with hospital systems",
         keywords="fhir, interoperability, hl7",
         focus="FHIR-based integration middleware for hospitals and med-tech vendors",
         product="FHIR integration engine licences"),
    _cap("ageing_tech", sectors="ehealth medtech", offered_by="sme", sought_by="hosp pub pat",
         offer="sensor-based fall detection and smart-home support for independent living",
         seek="assistive technology for healthy ageing at home",
         keywords="healthy ageing, fall detection, independent living",
         focus="fall-detection sensors and smart-home support for older adults",
         product="fall-detection sensor kits"),
    _cap("med_cybersecurity", sectors="ehealth business_services", offered_by="sme",
         sought_by="sme lc hosp",
         offer="cybersecurity assessment of connected medical devices",
         seek="cybersecurity assessment of our connected device for MDR",
         keywords="cybersecurity, connected devices, iec 81001-5-1",
         focus="cybersecurity testing for connected medical devices"),
    _cap("prom_app", sectors="ehealth", offered_by="sme", sought_by="hosp pat",
         offer="patient engagement app for collecting patient-reported outcomes",
         seek="digital tool for collecting patient-reported outcomes",
         keywords="proms, patient engagement, mobile app",
         focus="patient-reported outcome collection apps for hospitals"),
    # -- digital therapeutics
    _cap("dtx_mental", sectors="digital_therapeutics ehealth", offered_by="sme",
         sought_by="hosp pub pat",
         offer="app-based cognitive behavioural therapy for insomnia and anxiety",
         seek="digital therapeutic for mental health to offer our patients",
         keywords="digital therapeutics, cbt, mental health",
         focus="app-based CBT programmes for insomnia and anxiety",
         product="digital CBT prescriptions"),
    _cap("dtx_rehab", sectors="digital_therapeutics medtech", offered_by="sme",
         sought_by="hosp pat",
         offer="gamified home rehabilitation for stroke survivors",
         seek="digital rehabilitation programme for post-stroke care",
         keywords="stroke rehabilitation, gamification, neurorehabilitation",
         focus="gamified motor rehabilitation after stroke",
         product="home rehabilitation kits and licences"),
    _cap("dtx_reimbursement", sectors="digital_therapeutics business_services", offered_by="sme",
         sought_by="sme",
         offer="health-economic dossiers and DiGA or PECAN reimbursement applications",
         seek="support for reimbursement of a digital therapeutic (DiGA, PECAN)",
         keywords="reimbursement, diga, health economics",
         focus="reimbursement and health-economic evidence for digital health"),
    _cap("codesign", sectors="digital_therapeutics ehealth", offered_by="pat oth",
         sought_by="sme lc uni",
         offer="patients for co-design of a digital therapeutic | patient panel for usability "
               "testing",
         seek="patient organisation to co-design and test our app",
         keywords="co-design, patient involvement, usability"),
    _cap("dtx_diabetes", sectors="digital_therapeutics functional_food", offered_by="sme",
         sought_by="pub hosp",
         offer="digital lifestyle coaching programme for type 2 diabetes",
         seek="digital diabetes prevention programme for a regional roll-out",
         keywords="diabetes, lifestyle medicine, behaviour change",
         focus="digital coaching for type 2 diabetes remission"),
    _cap("dtx_rct", sectors="digital_therapeutics", offered_by="hosp uni", sought_by="sme",
         offer="randomised clinical evaluation of digital health interventions",
         seek="academic partner to run an RCT of our digital therapeutic",
         keywords="randomised controlled trial, clinical evaluation, digital health"),
    # -- medtech
    _cap("implant_coating", sectors="medtech nanohealth", offered_by="sme rto", sought_by="sme lc",
         offer="antibacterial surface coatings for orthopaedic implants",
         seek="antimicrobial coating technology for our implants",
         keywords="implants, surface coating, orthopaedics",
         focus="antibacterial coatings for orthopaedic and dental implants"),
    _cap("md_manufacturing", sectors="medtech", offered_by="sme lc", sought_by="sme",
         offer="ISO 13485 contract manufacturing of class II medical devices",
         seek="ISO 13485 contract manufacturer to scale up a class II device",
         keywords="contract manufacturing, iso 13485, scale-up",
         focus="contract manufacturing of class II medical devices",
         product="class II device assembly"),
    _cap("wearables", sectors="medtech ehealth", offered_by="sme", sought_by="hosp lc sme",
         offer="wearable biosensor patches for continuous vital-sign monitoring",
         seek="wearable sensor partner for a decentralised clinical trial",
         keywords="wearables, biosensors, vital signs",
         focus="wearable biosensors for continuous vital-sign monitoring",
         product="wearable biosensor patches"),
    _cap("surgical_robotics", sectors="medtech", offered_by="sme lc", sought_by="hosp",
         offer="robotic platform for minimally invasive surgery",
         seek="robotics partner for minimally invasive procedures",
         keywords="surgical robotics, minimally invasive surgery",
         focus="compact robotic systems for minimally invasive surgery"),
    _cap("usability", sectors="medtech", offered_by="hosp uni oth", sought_by="sme lc",
         offer="human-factors and usability testing in a simulated clinical environment",
         seek="usability engineering study (IEC 62366) with clinicians",
         keywords="usability, iec 62366, simulation centre"),
    _cap("mdr_regulatory", sectors="business_services medtech", offered_by="sme", sought_by="sme",
         offer="regulatory support for CE marking under MDR | technical documentation and "
               "clinical evaluation reports",
         seek="regulatory support for CE marking under MDR",
         keywords="mdr, ce marking, regulatory affairs",
         focus="regulatory affairs for medical devices under MDR and IVDR"),
    _cap("additive", sectors="medtech", offered_by="sme rto", sought_by="hosp sme",
         offer="patient-specific 3D-printed surgical guides and implants",
         seek="3D printing of patient-specific anatomical models",
         keywords="3d printing, additive manufacturing, patient-specific",
         focus="patient-specific 3D-printed surgical guides",
         product="3D-printed surgical guides"),
    _cap("ultrasound", sectors="medtech diagnostics", offered_by="sme", sought_by="hosp pub",
         offer="low-cost handheld ultrasound for primary care",
         seek="portable imaging for community diagnostics",
         keywords="ultrasound, imaging, primary care",
         focus="handheld ultrasound for primary care",
         product="handheld ultrasound probes"),
    _cap("procurement", sectors="medtech ehealth", offered_by="hosp pub", sought_by="sme lc",
         offer="innovation procurement (PCP/PPI) for unmet hospital needs",
         seek="public buyer for a pre-commercial procurement pilot",
         keywords="public procurement, pcp, ppi"),
    _cap("clinical_needs", sectors="medtech", offered_by="hosp", sought_by="sme uni rto",
         offer="unmet clinical needs from surgeons and nurses for co-development",
         seek="clinicians to define unmet needs for a new device",
         keywords="unmet needs, clinical champions, co-development"),
    # -- pharma
    _cap("api_gmp", sectors="pharma", offered_by="sme lc", sought_by="sme lc",
         offer="GMP manufacturing of small-molecule APIs from grams to tonnes",
         seek="GMP API manufacturer for phase II clinical supply",
         keywords="api, gmp, cdmo",
         focus="GMP manufacturing of small-molecule APIs",
         product="GMP small-molecule API batches"),
    _cap("formulation", sectors="pharma nanohealth", offered_by="sme rto", sought_by="sme lc",
         offer="nanoparticle and liposomal formulation development",
         seek="formulation partner for a poorly soluble compound",
         keywords="formulation, liposomes, drug delivery",
         focus="formulation of poorly soluble drugs"),
    _cap("cro", sectors="pharma business_services", offered_by="sme lc", sought_by="sme lc",
         offer="phase I-III clinical trial management in Europe",
         seek="CRO for a multi-country phase II trial",
         keywords="cro, clinical trials, gcp",
         focus="clinical trial management for small and mid-size sponsors",
         product="clinical monitoring services"),
    _cap("phase1_unit", sectors="pharma", offered_by="hosp", sought_by="sme lc",
         offer="phase I clinical trial unit with overnight beds",
         seek="phase I unit for a first-in-human study",
         keywords="phase i, first-in-human, clinical trial unit"),
    _cap("recruitment", sectors="pharma", offered_by="pat hosp", sought_by="sme lc uni",
         offer="support for patient recruitment in {topic} trials",
         seek="patient recruitment support for a {topic} trial",
         keywords="patient recruitment, clinical trials"),
    _cap("repurposing", sectors="pharma ai_and_data", offered_by="sme uni", sought_by="pat sme lc",
         offer="AI-driven drug repurposing screens",
         seek="repurposing candidates for a neglected indication",
         keywords="drug repurposing, in silico screening",
         focus="AI-driven drug repurposing"),
    _cap("in_licensing", sectors="pharma", offered_by="lc", sought_by="sme uni rto",
         offer="in-licensing and co-development of clinical-stage assets",
         seek="pharma partner to license our preclinical asset",
         keywords="licensing, business development, co-development"),
    _cap("pharmacovigilance", sectors="pharma business_services", offered_by="sme",
         sought_by="sme lc",
         offer="outsourced pharmacovigilance and safety reporting",
         seek="pharmacovigilance provider for EU market entry",
         keywords="pharmacovigilance, drug safety",
         focus="outsourced pharmacovigilance",
         product="pharmacovigilance services"),
    _cap("market_access", sectors="pharma business_services", offered_by="sme", sought_by="sme lc",
         offer="HTA dossiers and market access strategy for European markets",
         seek="market access support for a launch in {market}",
         keywords="market access, hta, pricing",
         focus="HTA and market access consulting"),
    _cap("vaccines", sectors="pharma biotech", offered_by="sme lc rto", sought_by="sme lc",
         offer="vaccine antigen design and adjuvant formulation",
         seek="vaccine development partner for an adjuvanted antigen",
         keywords="vaccines, adjuvants, immunology",
         focus="adjuvanted vaccines against respiratory infections"),
    # -- biotech
    _cap("viral_vectors", sectors="biotech", offered_by="sme lc", sought_by="sme uni",
         offer="GMP manufacturing of viral vectors (AAV, lentivirus)",
         seek="GMP viral vector supply for a gene therapy trial",
         keywords="aav, lentivirus, gene therapy",
         focus="AAV and lentiviral vector manufacturing",
         product="GMP AAV vector batches"),
    _cap("cell_therapy", sectors="biotech", offered_by="sme uni", sought_by="lc hosp",
         offer="allogeneic NK cell therapy platform",
         seek="cell therapy partner for solid tumour programmes",
         keywords="cell therapy, car-t, nk cells",
         focus="allogeneic NK and CAR-NK cell therapies"),
    _cap("antibodies", sectors="biotech pharma", offered_by="sme", sought_by="lc sme uni",
         offer="antibody discovery by phage display and humanisation",
         seek="antibody discovery partner for a novel target",
         keywords="antibodies, phage display, biologics",
         focus="antibody discovery against hard-to-drug targets",
         product="antibody discovery campaigns"),
    _cap("organoids", sectors="biotech", offered_by="uni rto sme", sought_by="lc sme",
         offer="patient-derived organoid models for drug testing",
         seek="organoid models to replace animal testing",
         keywords="organoids, 3r, disease models",
         focus="patient-derived organoid models for drug response testing",
         product="organoid drug-screening studies"),
    _cap("crispr", sectors="biotech", offered_by="uni rto sme", sought_by="sme lc",
         offer="CRISPR cell-line engineering and functional genomics screens",
         seek="CRISPR knock-out screen service",
         keywords="crispr, functional genomics, cell lines",
         focus="CRISPR-engineered cell lines",
         product="engineered cell lines"),
    _cap("biobank", sectors="biotech diagnostics", offered_by="hosp uni", sought_by="sme lc",
         offer="access to a biobank of annotated tumour and blood samples",
         seek="annotated human samples from a biobank",
         keywords="biobank, human samples, annotation"),
    _cap("cryo_em", sectors="biotech", offered_by="rto uni", sought_by="sme lc",
         offer="open-access cryo-EM and structural biology core facility",
         seek="access to cryo-EM for structure determination",
         keywords="cryo-em, structural biology, core facility"),
    _cap("fermentation", sectors="biotech functional_food", offered_by="sme lc", sought_by="sme",
         offer="precision fermentation scale-up to 1,000 litres",
         seek="fermentation scale-up partner",
         keywords="precision fermentation, bioprocess, scale-up",
         focus="precision fermentation of proteins and enzymes",
         product="fermentation scale-up runs"),
    _cap("microbiome", sectors="biotech functional_food", offered_by="sme uni",
         sought_by="lc sme hosp",
         offer="gut microbiome profiling and live biotherapeutic development",
         seek="microbiome expertise for a clinical nutrition product",
         keywords="microbiome, probiotics, live biotherapeutics",
         focus="live biotherapeutics based on the gut microbiome"),
    _cap("regen_scaffolds", sectors="biotech medtech", offered_by="uni rto sme",
         sought_by="sme hosp",
         offer="biomaterial scaffolds for regenerative medicine",
         seek="scaffold technology for tissue engineering",
         keywords="regenerative medicine, biomaterials, tissue engineering",
         focus="biomaterial scaffolds for cartilage and bone repair"),
    _cap("preclinical", sectors="biotech pharma", offered_by="sme", sought_by="sme lc uni",
         offer="GLP preclinical pharmacology and toxicology studies",
         seek="GLP toxicology studies before first-in-human",
         keywords="preclinical, glp, toxicology",
         focus="GLP preclinical pharmacology and toxicology",
         product="GLP toxicology studies"),
    # -- nanohealth
    _cap("nano_contrast", sectors="nanohealth diagnostics", offered_by="sme rto",
         sought_by="sme lc hosp",
         offer="nanoparticle contrast agents for MRI and optical imaging",
         seek="nano-contrast agent for molecular imaging",
         keywords="nanoparticles, contrast agents, molecular imaging",
         focus="nanoparticle contrast agents for molecular imaging"),
    _cap("nano_characterisation", sectors="nanohealth", offered_by="rto uni", sought_by="sme lc",
         offer="nanomaterial characterisation and safety testing",
         seek="nanomaterial characterisation for our regulatory file",
         keywords="nanosafety, characterisation, nanomaterials"),
    _cap("lnp_delivery", sectors="nanohealth pharma", offered_by="sme", sought_by="lc sme uni",
         offer="lipid nanoparticle formulation for mRNA and siRNA",
         seek="LNP delivery partner for an RNA therapeutic",
         keywords="lipid nanoparticles, mrna, drug delivery",
         focus="targeted lipid nanoparticles for RNA delivery",
         product="research-grade LNP formulations"),
    _cap("nanosensors", sectors="nanohealth medtech", offered_by="sme rto", sought_by="sme lc",
         offer="graphene and nanowire biosensors",
         seek="nanosensor technology for a breath or sweat test",
         keywords="biosensors, graphene, nanowires",
         focus="graphene-based biosensors for non-invasive monitoring"),
    _cap("cleanroom", sectors="nanohealth medtech", offered_by="rto uni", sought_by="sme",
         offer="cleanroom micro- and nanofabrication for prototypes",
         seek="cleanroom access for microfabrication",
         keywords="cleanroom, microfabrication, mems"),
    # -- functional food
    _cap("nutrition_trials", sectors="functional_food", offered_by="uni rto hosp",
         sought_by="sme lc",
         offer="human intervention studies to substantiate EFSA health claims",
         seek="human intervention study to substantiate an EFSA health claim",
         keywords="efsa, health claims, nutrition trials"),
    _cap("plant_protein", sectors="functional_food", offered_by="sme lc", sought_by="sme lc",
         offer="oat and pea protein ingredients with documented health effects",
         seek="plant-based ingredient supplier for medical nutrition",
         keywords="plant protein, ingredients, oats",
         focus="oat and pea protein ingredients",
         product="oat protein ingredients"),
    _cap("medical_nutrition", sectors="functional_food pharma", offered_by="lc sme",
         sought_by="hosp pat",
         offer="medical nutrition for malnutrition in older adults",
         seek="medical nutrition products for malnourished older patients",
         keywords="medical nutrition, fsmp, malnutrition",
         focus="medical nutrition for older adults and oncology patients",
         product="oral nutritional supplements"),
    _cap("encapsulation", sectors="functional_food", offered_by="sme", sought_by="sme lc",
         offer="nutraceutical formulation and encapsulation of probiotics",
         seek="encapsulation technology for probiotics",
         keywords="nutraceuticals, encapsulation, probiotics",
         focus="encapsulation of probiotics and nutraceuticals",
         product="encapsulated probiotic blends"),
    _cap("personal_nutrition", sectors="functional_food ai_and_data", offered_by="sme",
         sought_by="pub hosp",
         offer="personalised nutrition app based on glucose response data",
         seek="personalised nutrition tool for a prevention programme",
         keywords="personalised nutrition, glucose monitoring, prevention",
         focus="personalised nutrition based on glucose response"),
    # -- cosmetics
    _cap("skin_models", sectors="cosmetics biotech", offered_by="sme rto", sought_by="lc sme",
         offer="reconstructed human skin models for animal-free safety testing",
         seek="in-vitro skin model for cosmetic safety assessment",
         keywords="skin models, in vitro, animal-free testing",
         focus="reconstructed human skin models",
         product="reconstructed skin model kits"),
    _cap("cosmetic_actives", sectors="cosmetics", offered_by="sme lc", sought_by="lc sme",
         offer="biotech-derived cosmetic active ingredients",
         seek="sustainable active ingredient for a skin-care line",
         keywords="cosmetic actives, green chemistry, skin care",
         focus="marine and plant-derived cosmetic actives",
         product="cosmetic active ingredients"),
    _cap("claims_testing", sectors="cosmetics business_services", offered_by="sme",
         sought_by="lc sme",
         offer="clinical efficacy and claims testing for dermocosmetics",
         seek="dermatological claims testing on volunteers",
         keywords="claims substantiation, dermatology, efficacy testing",
         focus="efficacy and claims testing for dermocosmetics",
         product="dermatological efficacy studies"),
    _cap("cpsr", sectors="cosmetics business_services", offered_by="sme", sought_by="sme",
         offer="EU Cosmetics Regulation safety assessments (CPSR)",
         seek="cosmetic product safety report for an EU launch",
         keywords="cpsr, cosmetics regulation",
         focus="cosmetic safety assessment and regulatory compliance"),
    _cap("skin_ai", sectors="cosmetics ai_and_data", offered_by="sme", sought_by="lc hosp",
         offer="AI skin analysis from smartphone images",
         seek="skin imaging AI for a dermocosmetic brand",
         keywords="skin analysis, computer vision, dermatology",
         focus="AI skin analysis from smartphone images"),
    # -- veterinary
    _cap("vet_vaccines", sectors="veterinary biotech", offered_by="sme lc", sought_by="lc sme",
         offer="autogenous vaccines and biologics for pigs and poultry",
         seek="veterinary vaccine partner for aquaculture",
         keywords="veterinary vaccines, livestock, aquaculture",
         focus="vaccines and biologics for livestock",
         product="autogenous livestock vaccines"),
    _cap("vet_diagnostics", sectors="veterinary diagnostics", offered_by="sme", sought_by="lc uni",
         offer="rapid on-farm diagnostics for animal infections",
         seek="rapid diagnostic for bovine respiratory disease",
         keywords="animal health, on-farm testing, one health",
         focus="rapid on-farm diagnostics for livestock infections",
         product="on-farm test kits"),
    _cap("one_health", sectors="veterinary", offered_by="uni rto", sought_by="lc sme pub",
         offer="One Health surveillance of antimicrobial resistance in animals",
         seek="One Health partner for AMR surveillance",
         keywords="one health, amr surveillance, zoonoses"),
    _cap("vet_clinical", sectors="veterinary", offered_by="uni", sought_by="sme lc",
         offer="veterinary teaching hospital for clinical studies in companion animals",
         seek="site for clinical studies in companion animals",
         keywords="companion animals, veterinary clinical trials"),
    _cap("livestock_sensors", sectors="veterinary ai_and_data", offered_by="sme",
         sought_by="lc uni",
         offer="sensor-based precision livestock monitoring",
         seek="sensor data partner for animal welfare monitoring",
         keywords="precision livestock farming, sensors, animal welfare",
         focus="sensor-based precision livestock monitoring",
         product="livestock monitoring sensors"),
    # -- business services and support
    _cap("ip_strategy", sectors="business_services", offered_by="sme oth", sought_by="sme uni",
         offer="patent drafting and IP strategy for life-science start-ups",
         seek="IP strategy and freedom-to-operate analysis",
         keywords="patents, freedom to operate, intellectual property",
         focus="patent and IP strategy for life-science start-ups"),
    _cap("grant_writing", sectors="business_services", offered_by="sme clu", sought_by="sme",
         offer="grant writing for Horizon Europe and the EIC Accelerator",
         seek="help writing an EIC Accelerator application",
         keywords="horizon europe, eic accelerator, grant writing",
         focus="EU grant writing for life-science SMEs"),
    _cap("qms", sectors="business_services medtech", offered_by="sme", sought_by="sme",
         offer="ISO 13485 quality management system set-up",
         seek="quality management system ready for a notified-body audit",
         keywords="quality management, iso 13485, audit",
         focus="quality management systems for medical device start-ups"),
    _cap("soft_landing", sectors="business_services", offered_by="clu pub", sought_by="sme lc",
         offer="soft-landing and market-entry support for foreign life-science companies",
         seek="market-entry support in {market}",
         keywords="soft landing, market entry, internationalisation"),
    _cap("incubator", sectors="business_services", offered_by="clu", sought_by="sme",
         offer="incubator lab space and shared equipment for start-ups",
         seek="wet-lab space in a science park",
         keywords="incubator, lab space, science park"),
    _cap("matchmaking", sectors="business_services", offered_by="clu", sought_by="sme pub",
         offer="matchmaking events and partnering missions abroad",
         seek="introductions to partners in another cluster",
         keywords="matchmaking, partnering, b2b meetings"),
    _cap("consortium", sectors="business_services", offered_by="uni rto clu",
         sought_by="sme lc uni rto hosp pat pub oth",
         offer="experienced coordinator for Horizon Europe consortia",
         seek="partner for a Horizon Europe consortium on {topic} | consortium partners for an "
              "IHI call on {topic}",
         keywords="horizon europe, consortium building"),
    _cap("training", sectors="business_services", offered_by="uni clu oth", sought_by="sme hosp",
         offer="regulatory and GMP training for life-science staff",
         seek="upskilling programme for staff in regulatory affairs",
         keywords="training, upskilling, gmp"),
    _cap("tech_transfer", sectors="business_services", offered_by="uni rto",
         sought_by="sme lc fund",
         offer="licensable patents and spin-off opportunities from our technology transfer office",
         seek="technology to in-license from academia",
         keywords="technology transfer, licensing, spin-offs"),
    _cap("cluster_twinning", sectors="business_services", offered_by="clu", sought_by="clu pub",
         offer="twin-cluster partnership and joint internationalisation strategy",
         seek="cluster partner abroad for a twinning programme",
         keywords="cluster cooperation, internationalisation, twinning"),
    # -- money
    _cap("seed_medtech", sectors="medtech diagnostics", offered_by="fund", sought_by="sme",
         offer="seed investment in medtech and diagnostics start-ups",
         seek="seed investment to reach first-in-human",
         keywords="seed funding, venture capital, medtech"),
    _cap("series_a", sectors="biotech pharma", offered_by="fund", sought_by="sme",
         offer="Series A investment in therapeutics companies",
         seek="Series A round to fund a phase I study",
         keywords="series a, venture capital, therapeutics"),
    _cap("angel_digital", sectors="ehealth digital_therapeutics ai_and_data", offered_by="fund",
         sought_by="sme",
         offer="seed investment in digital health and health AI start-ups",
         seek="angel investor for a digital health start-up",
         keywords="business angels, seed funding, digital health"),
    _cap("vouchers", sectors="business_services", offered_by="pub fund", sought_by="sme",
         offer="innovation vouchers for SME collaboration with research organisations",
         seek="innovation voucher to fund a feasibility study",
         keywords="innovation vouchers, feasibility study"),
    _cap("regional_cofunding", sectors="business_services", offered_by="pub",
         sought_by="sme rto uni",
         offer="regional co-funding for collaborative R&D projects with SMEs",
         seek="co-funding for a collaborative R&D project",
         keywords="regional funding, s3, co-funding"),
    # -- patients
    _cap("patient_insight", sectors="pharma digital_therapeutics", offered_by="pat",
         sought_by="sme lc uni hosp",
         offer="lived-experience insight and patient advisory boards",
         seek="patient advisory board for a study on {topic}",
         keywords="patient involvement, advisory board, lived experience"),
    _cap("dissemination", sectors="ehealth", offered_by="pat clu oth", sought_by="sme uni",
         offer="dissemination to patients, carers and clinicians across the region",
         seek="dissemination partner to reach patients and carers",
         keywords="dissemination, communication, patient education"),
    # -- seek-only needs (nobody "offers" them; matched on descriptions)
    _cap("deal_flow_dx", sectors="diagnostics ai_and_data", offered_by="", sought_by="fund",
         offer="",
         seek="diagnostics and health AI start-ups raising a seed round",
         keywords="deal flow, seed, diagnostics"),
    _cap("deal_flow_tx", sectors="biotech pharma", offered_by="", sought_by="fund",
         offer="",
         seek="preclinical therapeutics companies preparing a Series A",
         keywords="deal flow, series a, therapeutics"),
    _cap("relocation", sectors="business_services", offered_by="", sought_by="pub clu",
         offer="",
         seek="foreign life-science companies setting up R&D in the region",
         keywords="inward investment, foreign direct investment"),
    _cap("waiting_lists", sectors="ehealth", offered_by="", sought_by="pub hosp",
         offer="",
         seek="solutions that shorten waiting lists in outpatient care",
         keywords="waiting lists, outpatient care, capacity"),
    _cap("research_on_condition", sectors="pharma biotech", offered_by="", sought_by="pat",
         offer="",
         seek="researchers and companies working on {topic}",
         keywords="research partnership, unmet need"),
)
# fmt: on
CAPABILITY_BY_KEY = {c.key: c for c in CAPABILITIES}


# Capabilities whose provider is a service company (CRO, CDMO, consultancy), not a product
# developer, with the noun used to describe such a provider.
SERVICE_PROVIDERS = {
    "api_gmp": "contract development and manufacturing organisation",
    "viral_vectors": "contract development and manufacturing organisation",
    "md_manufacturing": "contract manufacturer",
    "fermentation": "contract development and manufacturing organisation",
    "encapsulation": "contract formulation company",
    "cro": "contract research organisation",
    "preclinical": "contract research organisation",
    "antibodies": "contract research organisation",
    "crispr": "contract research organisation",
    "biostatistics": "data science consultancy",
    "market_access": "consultancy",
    "pharmacovigilance": "consultancy",
    "mdr_regulatory": "regulatory consultancy",
    "qms": "quality and regulatory consultancy",
    "ip_strategy": "patent and IP firm",
    "grant_writing": "funding consultancy",
    "dtx_reimbursement": "consultancy",
    "med_cybersecurity": "cybersecurity firm",
    "claims_testing": "testing laboratory",
    "cpsr": "regulatory consultancy",
}
# What an organisation working in a sector typically looks for (filtered by who may seek it
# and by stage). Many entries sit in other sectors or are offered by other kinds: that is what
# makes cross-sector matches meaningful.
NEEDS = {
    "pharma": (
        "preclinical",
        "cro",
        "phase1_unit",
        "api_gmp",
        "formulation",
        "lnp_delivery",
        "series_a",
        "in_licensing",
        "recruitment",
        "patient_insight",
        "rwd_access",
        "companion_dx",
        "market_access",
        "pharmacovigilance",
        "antibodies",
        "organoids",
        "cell_therapy",
        "vaccines",
    ),
    "biotech": (
        "preclinical",
        "viral_vectors",
        "cryo_em",
        "crispr",
        "organoids",
        "omics_ai",
        "biobank",
        "series_a",
        "in_licensing",
        "phase1_unit",
        "cro",
        "fermentation",
        "liquid_biopsy",
    ),
    "medtech": (
        "clinical_needs",
        "usability",
        "md_manufacturing",
        "mdr_regulatory",
        "qms",
        "seed_medtech",
        "procurement",
        "living_lab",
        "med_cybersecurity",
        "additive",
        "implant_coating",
        "wearables",
        "cleanroom",
    ),
    "diagnostics": (
        "ivd_validation",
        "biobank",
        "microfluidics",
        "mdr_regulatory",
        "qms",
        "seed_medtech",
        "companion_dx",
        "biomarker_discovery",
        "ai_pathology",
        "nanosensors",
        "market_access",
        "procurement",
        "poc_test",
    ),
    "ehealth": (
        "living_lab",
        "interoperability",
        "codesign",
        "procurement",
        "angel_digital",
        "med_cybersecurity",
        "rwd_access",
        "prom_app",
        "clinical_nlp",
        "dtx_rct",
        "wearables",
    ),
    "ai_and_data": (
        "rwd_access",
        "federated_learning",
        "hpc",
        "biobank",
        "clinical_needs",
        "mdr_regulatory",
        "angel_digital",
        "data_governance",
        "ivd_validation",
        "ai_pathology",
        "ai_radiology",
    ),
    "digital_therapeutics": (
        "codesign",
        "dtx_rct",
        "dtx_reimbursement",
        "angel_digital",
        "living_lab",
        "patient_insight",
        "mdr_regulatory",
        "interoperability",
        "wearables",
    ),
    "nanohealth": (
        "nano_characterisation",
        "cleanroom",
        "preclinical",
        "seed_medtech",
        "series_a",
        "mdr_regulatory",
        "phase1_unit",
        "clinical_needs",
    ),
    "functional_food": (
        "nutrition_trials",
        "fermentation",
        "encapsulation",
        "plant_protein",
        "microbiome",
        "living_lab",
        "personal_nutrition",
    ),
    "cosmetics": (
        "skin_models",
        "claims_testing",
        "cpsr",
        "cosmetic_actives",
        "skin_ai",
        "fermentation",
        "microbiome",
    ),
    "veterinary": (
        "vet_clinical",
        "one_health",
        "vet_diagnostics",
        "vet_vaccines",
        "livestock_sensors",
        "fermentation",
        "preclinical",
    ),
    "business_services": ("matchmaking", "soft_landing", "consortium"),
}
# Service companies look for clients and partners rather than technology.
SERVICE_NEEDS = ("matchmaking", "soft_landing", "consortium", "training", "regional_cofunding")
GENERIC_NEEDS = (
    "ip_strategy",
    "grant_writing",
    "soft_landing",
    "consortium",
    "vouchers",
    "regional_cofunding",
    "tech_transfer",
    "matchmaking",
    "incubator",
    "training",
)
# Maturity (TRL) window in which a need makes sense, for organisations that have a TRL.
NEED_STAGE = {
    "preclinical": (3, 5),
    "phase1_unit": (4, 7),
    "series_a": (3, 6),
    "seed_medtech": (2, 5),
    "angel_digital": (2, 6),
    "md_manufacturing": (5, 9),
    "procurement": (6, 9),
    "in_licensing": (3, 7),
    "cro": (4, 8),
    "api_gmp": (4, 8),
    "viral_vectors": (4, 8),
    "market_access": (7, 9),
    "pharmacovigilance": (7, 9),
    "mdr_regulatory": (4, 8),
    "qms": (4, 8),
    "incubator": (1, 5),
    "dtx_reimbursement": (6, 9),
    "ivd_validation": (5, 8),
    "nutrition_trials": (4, 8),
    "claims_testing": (6, 9),
    "cpsr": (7, 9),
    "usability": (5, 8),
    "clinical_needs": (1, 5),
    "tech_transfer": (1, 6),
    "vouchers": (1, 6),
}


# Further offers that sit naturally beside a company's main one (same team, same customers).
COMPANIONS = {
    "poc_test": ("microfluidics", "amr_diagnostics"),
    "liquid_biopsy": ("biomarker_discovery", "companion_dx"),
    "microfluidics": ("poc_test", "nanosensors"),
    "amr_diagnostics": ("poc_test",),
    "companion_dx": ("liquid_biopsy", "biomarker_discovery"),
    "biomarker_discovery": ("companion_dx",),
    "ai_pathology": ("federated_learning", "biostatistics"),
    "ai_radiology": ("federated_learning", "clinical_nlp"),
    "federated_learning": ("omics_ai", "biostatistics", "clinical_nlp"),
    "biostatistics": ("cro", "federated_learning"),
    "omics_ai": ("repurposing", "biostatistics"),
    "clinical_nlp": ("interoperability", "federated_learning"),
    "remote_monitoring": ("interoperability", "wearables", "prom_app"),
    "interoperability": ("prom_app", "med_cybersecurity"),
    "ageing_tech": ("remote_monitoring", "wearables"),
    "med_cybersecurity": ("interoperability", "mdr_regulatory"),
    "prom_app": ("interoperability", "remote_monitoring"),
    "dtx_mental": ("prom_app",),
    "dtx_rehab": ("wearables",),
    "dtx_reimbursement": ("market_access",),
    "dtx_diabetes": ("personal_nutrition", "prom_app"),
    "implant_coating": ("additive",),
    "md_manufacturing": ("qms", "additive"),
    "wearables": ("remote_monitoring",),
    "surgical_robotics": ("additive",),
    "mdr_regulatory": ("qms", "med_cybersecurity"),
    "additive": ("md_manufacturing",),
    "ultrasound": ("ai_radiology",),
    "api_gmp": ("formulation",),
    "formulation": ("api_gmp", "lnp_delivery"),
    "cro": ("biostatistics", "pharmacovigilance"),
    "repurposing": ("omics_ai",),
    "pharmacovigilance": ("cro", "market_access"),
    "market_access": ("pharmacovigilance", "dtx_reimbursement"),
    "vaccines": ("antibodies",),
    "viral_vectors": ("crispr",),
    "cell_therapy": ("crispr",),
    "antibodies": ("crispr",),
    "organoids": ("crispr", "preclinical"),
    "crispr": ("organoids",),
    "fermentation": ("plant_protein", "cosmetic_actives"),
    "microbiome": ("encapsulation",),
    "regen_scaffolds": ("additive",),
    "preclinical": ("organoids",),
    "lnp_delivery": ("formulation",),
    "nanosensors": ("microfluidics",),
    "plant_protein": ("fermentation",),
    "medical_nutrition": ("plant_protein",),
    "encapsulation": ("microbiome",),
    "personal_nutrition": ("dtx_diabetes",),
    "skin_models": ("claims_testing",),
    "cosmetic_actives": ("fermentation",),
    "claims_testing": ("cpsr", "skin_models"),
    "cpsr": ("claims_testing",),
    "vet_vaccines": ("vet_diagnostics",),
    "vet_diagnostics": ("livestock_sensors",),
    "livestock_sensors": ("vet_diagnostics",),
    "ip_strategy": ("grant_writing",),
    "grant_writing": ("ip_strategy",),
    "qms": ("mdr_regulatory",),
}
OFFER_COUNTS = {
    "sme": (1, 1, 2, 2, 3),
    "large_company": (2, 3, 3, 4),
    "university": (2, 3, 4),
    "research_organisation": (2, 3, 3, 4),
    "hospital_or_care_provider": (2, 3, 4),
    "public_body": (2, 3),
    "patient_organisation": (1, 2, 3),
    "funder_or_investor": (1, 2),
    "cluster_or_science_park": (2, 3, 4),
    "other": (1, 2),
}
SEEK_COUNTS = {"patient_organisation": (1, 2), "funder_or_investor": (1, 2)}
# What an organisation of a kind offers whatever its sectors.
GENERIC_OFFERS = {
    "university": ("tech_transfer", "consortium", "training"),
    "research_organisation": ("consortium", "tech_transfer"),
    "hospital_or_care_provider": ("clinical_needs", "procurement", "biobank", "rwd_access"),
    "public_body": ("vouchers", "regional_cofunding", "soft_landing"),
    "patient_organisation": ("patient_insight", "dissemination", "codesign"),
    "cluster_or_science_park": (
        "matchmaking",
        "incubator",
        "soft_landing",
        "cluster_twinning",
        "grant_writing",
        "consortium",
        "training",
    ),
}


# --------------------------------------------------------------------------------------------
# Regions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Institution:
    """A hand-written non-company organisation in a region."""

    kind: str
    name: str
    extra: dict[str, Any] = field(default_factory=dict)


def _inst(kind: str, name: str, **extra: Any) -> Institution:
    return Institution(KIND_CODES[kind], name, extra)


@dataclass(frozen=True)
class Region:
    key: str
    country: str
    region: str
    city: str
    cluster: str
    partnerships: tuple[str, ...]
    size: int
    n_large: int
    strengths: dict[str, float]
    places: tuple[str, ...]
    sme_form: str
    large_form: str
    programme: str
    institutions: tuple[Institution, ...]
    population_m: float


# fmt: off
REGIONS: tuple[Region, ...] = (
    Region(
        key="catalonia", country="ES", region="Catalonia", city="Barcelona", cluster="biocat",
        partnerships=("bright", "ai4diag"), size=30, n_large=2, population_m=7.9,
        strengths={"biotech": 3, "pharma": 2, "medtech": 2, "diagnostics": 2, "ehealth": 2,
                   "ai_and_data": 2, "digital_therapeutics": 1, "cosmetics": 1.5,
                   "business_services": 1},
        places=("Montseny", "Llobregat", "Tramuntana", "Garraf", "Collserola", "Empordà",
                "Penedès", "Cadí", "Montnegre"),
        sme_form="SL", large_form="SA", programme="RIS3CAT",
        institutions=(
            _inst("uni", "Universitat Mediterrània de Ciències de la Salut",
                  sectors=("pharma", "biotech", "ehealth"), students=31000),
            _inst("uni", "Universitat Politècnica del Vallès",
                  sectors=("medtech", "ai_and_data", "nanohealth"), students=18000),
            _inst("rto", "Institut de Bioenginyeria del Besòs",
                  sectors=("medtech", "nanohealth", "biotech")),
            _inst("hosp", "Hospital Universitari del Llobregat", beds=1250),
            _inst("hosp", "Hospital Clínic de Collserola", beds=780),
            _inst("pub", "Agència Catalana de Promoció de la Bioeconomia"),
            _inst("pat", "Associació de Pacients amb Malalties Minoritàries del Vallès",
                  condition="rare diseases"),
            _inst("fund", "Tramuntana Health Ventures SGEIC", style="venture capital firm"),
            _inst("clu", "Associació Clúster Salut Mediterrània", members=1100),
            _inst("oth", "Fundació Living Lab Salut i Envelliment", sectors=("ehealth",),
                  offers=("living_lab", "usability", "dissemination"),
                  desc="A non-profit foundation that runs a living lab in care homes and "
                       "primary-care centres around Barcelona, testing digital and assistive "
                       "technologies with older adults, carers and professionals."),
        ),
    ),
    Region(
        key="hauts-de-france", country="FR", region="Hauts-de-France", city="Lille",
        cluster="eurasante",
        partnerships=("bright", "ai4diag"), size=26, n_large=2, population_m=6.0,
        strengths={"functional_food": 3, "diagnostics": 2, "pharma": 2, "ehealth": 2, "medtech": 1,
                   "biotech": 1.5, "cosmetics": 1, "business_services": 1},
        places=("Deûle", "Scarpe", "Flandre", "Artois", "Opale", "Lys", "Escaut", "Avesnois"),
        sme_form="SAS", large_form="SA", programme="FEDER-HDF",
        institutions=(
            _inst("uni", "Université de Flandre-Artois",
                  sectors=("pharma", "diagnostics", "functional_food"), students=67000),
            _inst("rto", "Institut Nutrition et Santé de la Côte d'Opale",
                  sectors=("functional_food", "biotech")),
            _inst("hosp", "CHU de la Deûle", beds=3100),
            _inst("hosp", "Groupe Hospitalier de l'Artois", beds=900),
            _inst("pub", "Agence Régionale pour l'Innovation Nord-Artois"),
            _inst("pat", "Association Nordiste des Personnes Diabétiques",
                  condition="type 2 diabetes"),
            _inst("fund", "Scarpe Capital Santé", style="regional investment fund"),
            _inst("clu", "Pôle Santé Nutrition Flandre-Artois",
                  sectors=("functional_food", "diagnostics", "business_services"), members=800),
            _inst("oth", "Living Lab Bien Vieillir en Artois",
                  sectors=("ehealth", "functional_food"), offers=("living_lab", "codesign"),
                  desc="An association running a living lab with 400 older volunteers who test "
                       "nutrition, home-care and telehealth innovations in their daily lives."),
        ),
    ),
    Region(
        key="skane", country="SE", region="Skåne", city="Lund", cluster="medicon-village",
        partnerships=("tim",), size=24, n_large=2, population_m=1.4,
        strengths={"biotech": 3, "pharma": 2, "medtech": 2, "functional_food": 2, "ai_and_data": 1,
                   "diagnostics": 1.5, "nanohealth": 1},
        places=("Kullaberg", "Söderåsen", "Österlen", "Höje", "Romeleås", "Falsterbo", "Kävlinge",
                "Linderöd"),
        sme_form="AB", large_form="AB", programme="VINNOVA",
        institutions=(
            _inst("uni", "South Sweden University of Life and Health Sciences",
                  sectors=("biotech", "medtech", "functional_food"), students=42000),
            _inst("rto", "Öresund Institute of Translational Medicine",
                  sectors=("biotech", "pharma", "diagnostics")),
            _inst("hosp", "Höjeå University Hospital", beds=1700),
            _inst("hosp", "Kristianslund Regional Hospital", beds=620),
            _inst("pub", "Sydsvenska Innovationsrådet"),
            _inst("pat", "Sydsvenska Parkinsonföreningen", condition="Parkinson's disease"),
            _inst("fund", "Kullaberg Life Science Invest AB", style="venture capital firm"),
            _inst("clu", "Höje Science Village AB", members=160),
            _inst("oth", "Skåne Food and Health Living Lab", sectors=("functional_food",),
                  offers=("living_lab", "training"),
                  desc="A shared pilot kitchen and consumer-test facility where food companies, "
                       "dietitians and researchers develop and test foods for health."),
        ),
    ),
    Region(
        key="wales", country="GB", region="Wales", city="Cardiff", cluster="lshw",
        partnerships=("tim",), size=22, n_large=1, population_m=3.1,
        strengths={"medtech": 3, "diagnostics": 2, "digital_therapeutics": 2, "ehealth": 2,
                   "ai_and_data": 1, "pharma": 1, "business_services": 1},
        places=("Taff", "Brecon", "Gower", "Preseli", "Menai", "Usk", "Cambrian", "Dyfed"),
        sme_form="Ltd", large_form="plc", programme="SBRI",
        institutions=(
            _inst("uni", "University of the Cambrian Valleys",
                  sectors=("medtech", "diagnostics", "digital_therapeutics"), students=33000),
            _inst("uni", "Menai Institute of Technology", sectors=("medtech", "ai_and_data"),
                  students=9000),
            _inst("hosp", "Taff Valley University Health Board", beds=2400),
            _inst("hosp", "Dyfed Coast University Health Board", beds=1100),
            _inst("pub", "Cymru Health Innovation Office"),
            _inst("pat", "Long COVID Support Network Wales", condition="long COVID"),
            _inst("fund", "Dragon Seed Health Fund", style="seed fund"),
            _inst("clu", "Cymru Life Science Partnership", members=450),
            _inst("oth", "Usk Valley Clinical Simulation Centre", sectors=("medtech",),
                  offers=("usability", "training"),
                  desc="An independent simulation and skills centre with mock wards and theatres, "
                       "used for clinical training and device usability studies."),
        ),
    ),
    Region(
        key="denmark", country="DK", region="Capital Region of Denmark", city="Copenhagen",
        cluster="dlsc",
        partnerships=("medic-nest",), size=24, n_large=3, population_m=1.9,
        strengths={"pharma": 3, "biotech": 2, "ai_and_data": 2, "ehealth": 2, "medtech": 1,
                   "veterinary": 1, "functional_food": 1, "digital_therapeutics": 1},
        places=("Amager", "Valby", "Hellerup", "Furesø", "Kronborg", "Mølle", "Øresund", "Arresø"),
        sme_form="ApS", large_form="A/S", programme="INNOFOND",
        institutions=(
            _inst("uni", "Amager University of Health Sciences",
                  sectors=("pharma", "biotech", "ai_and_data"), students=38000),
            _inst("uni", "Nordsjælland Technical University",
                  sectors=("medtech", "ai_and_data", "biotech"), students=12000),
            _inst("rto", "Danish Institute for Precision Health",
                  sectors=("biotech", "diagnostics", "ai_and_data")),
            _inst("hosp", "Furesø University Hospital", beds=1900),
            _inst("hosp", "Kronborg Regional Hospital", beds=700),
            _inst("pub", "Capital Region Health Innovation Office"),
            _inst("pat", "Mental Sundhed Netværk Danmark", condition="mental ill-health"),
            _inst("fund", "Kronborg Bio Ventures", sectors=("biotech", "pharma"),
                  style="venture capital firm"),
            _inst("clu", "Copenhagen Health Partnerships Cluster", members=400),
            _inst("oth", "Data for Sundhed Netværk", sectors=("ai_and_data", "ehealth"),
                  offers=("data_governance", "dissemination"),
                  desc="A public-private network of 25 partners working for better, trusted use "
                       "of Danish health data, from consent models to regulatory "
                       "recommendations."),
        ),
    ),
    Region(
        key="tuscany", country="IT", region="Tuscany", city="Siena", cluster="tls",
        partnerships=("ai4diag", "medic-nest"), size=18, n_large=1, population_m=3.7,
        strengths={"pharma": 2, "biotech": 2, "diagnostics": 2, "medtech": 1, "nanohealth": 1,
                   "ai_and_data": 1},
        places=("Arno", "Chianti", "Maremma", "Casentino", "Mugello", "Valdelsa", "Amiata",
                "Versilia"),
        sme_form="Srl", large_form="S.p.A.", programme="POR-FESR-TOS",
        institutions=(
            _inst("uni", "Università degli Studi della Valdelsa",
                  sectors=("pharma", "biotech", "diagnostics"), students=21000),
            _inst("rto", "Istituto Toscano di Ricerca sui Vaccini", sectors=("pharma", "biotech")),
            _inst("hosp", "Azienda Ospedaliero-Universitaria del Casentino", beds=1400),
            _inst("pub", "Agenzia Toscana per l'Innovazione in Sanità"),
            _inst("pat", "Associazione Toscana Fibrosi Cistica", condition="cystic fibrosis"),
            _inst("fund", "Amiata Venture Partners SGR", style="venture capital firm"),
            _inst("clu", "Polo Biomedico Arno-Chianti", members=190),
        ),
    ),
    Region(
        key="limburg", country="BE", region="Limburg", city="Hasselt", cluster="lifetechvalley",
        partnerships=("tim", "ai4diag"), size=18, n_large=1, population_m=0.9,
        strengths={"medtech": 3, "diagnostics": 2, "ehealth": 2, "nanohealth": 1,
                   "functional_food": 1, "business_services": 1},
        places=("Kempen", "Haspengouw", "Maasland", "Demer", "Herk", "Bokrijk", "Kolenspoor"),
        sme_form="BV", large_form="NV", programme="VLAIO",
        institutions=(
            _inst("uni", "Universiteit Kempen-Haspengouw",
                  sectors=("medtech", "diagnostics", "nanohealth"), students=7000),
            _inst("rto", "Limburgs Instituut voor Biosensoren",
                  sectors=("diagnostics", "nanohealth", "medtech")),
            _inst("hosp", "Algemeen Ziekenhuis Demervallei", beds=1000),
            _inst("pub", "Ontwikkelingsmaatschappij Haspengouw-Kempen"),
            _inst("pat", "Patiëntenplatform Chronische Pijn Limburg", condition="chronic pain"),
            _inst("fund", "Haspengouw Innovatiefonds NV", style="regional investment fund"),
            _inst("clu", "Kempen MedTech Valley vzw",
                  sectors=("medtech", "ehealth", "business_services"), members=120),
            _inst("oth", "Zorg Living Lab Maasland vzw", sectors=("ehealth", "medtech"),
                  offers=("living_lab", "usability"),
                  desc="A care living lab run with three residential care homes and the "
                       "home-nursing service, testing sensors, robotics and telecare."),
        ),
    ),
    Region(
        key="ostergotland", country="SE", region="Östergötland", city="Linköping",
        cluster="linkoping-health",
        partnerships=("bright",), size=14, n_large=1, population_m=0.47,
        strengths={"ehealth": 3, "medtech": 2, "ai_and_data": 2, "digital_therapeutics": 1,
                   "diagnostics": 1},
        places=("Roxen", "Stångå", "Kinda", "Omberg", "Tåkern", "Vättern", "Glan"),
        sme_form="AB", large_form="AB", programme="VINNOVA",
        institutions=(
            _inst("uni", "Stångå University of Technology and Medicine",
                  sectors=("medtech", "ehealth", "ai_and_data"), students=28000),
            _inst("rto", "Östgöta Institute for Health Informatics",
                  sectors=("ehealth", "ai_and_data")),
            _inst("hosp", "Roxen University Hospital", beds=900),
            _inst("pub", "Östgöta Regional Innovation Agency"),
            _inst("clu", "Östgöta Health Tech Cluster",
                  sectors=("ehealth", "medtech", "business_services"), members=90),
        ),
    ),
    Region(
        key="bavaria", country="DE", region="Bavaria", city="Munich", cluster="biom",
        partnerships=(), size=18, n_large=2, population_m=13.2,
        strengths={"biotech": 3, "medtech": 2, "diagnostics": 2, "pharma": 1, "veterinary": 1,
                   "ai_and_data": 1},
        places=("Isar", "Würm", "Ammersee", "Wendelstein", "Chiemgau", "Loisach", "Karwendel",
                "Altmühl"),
        sme_form="GmbH", large_form="AG", programme="BMBF",
        institutions=(
            _inst("uni", "Universität Oberland für Medizin und Naturwissenschaften",
                  sectors=("biotech", "pharma", "veterinary"), students=45000),
            _inst("uni", "Technische Hochschule Isar-Würm", sectors=("medtech", "ai_and_data"),
                  students=15000),
            _inst("rto", "Forschungszentrum für Zelltherapie Oberbayern",
                  sectors=("biotech", "pharma")),
            _inst("hosp", "Klinikum Isarauen der Universität Oberland", beds=2000),
            _inst("pub", "Bayerische Agentur für Gesundheitsinnovation"),
            _inst("pat", "Selbsthilfe Multiple Sklerose Oberbayern e.V.",
                  condition="multiple sclerosis"),
            _inst("fund", "Wendelstein Life Science Capital GmbH", style="venture capital firm"),
            _inst("clu", "Oberland Biotech Cluster e.V.",
                  sectors=("biotech", "pharma", "business_services"), members=350),
        ),
    ),
    Region(
        key="lombardy", country="IT", region="Lombardy", city="Milan", cluster="lombardy-ls",
        partnerships=(), size=16, n_large=2, population_m=10.0,
        strengths={"pharma": 3, "medtech": 2, "cosmetics": 2, "functional_food": 1, "biotech": 1,
                   "ai_and_data": 1},
        places=("Brianza", "Naviglio", "Adda", "Orobie", "Lario", "Valtellina", "Franciacorta",
                "Lomellina"),
        sme_form="Srl", large_form="S.p.A.", programme="POR-FESR-LOM",
        institutions=(
            _inst("uni", "Politecnico della Brianza",
                  sectors=("medtech", "ai_and_data", "cosmetics"), students=26000),
            _inst("rto", "Istituto Lombardo di Farmacologia Sperimentale",
                  sectors=("pharma", "biotech")),
            _inst("hosp", "IRCCS Ospedale dei Navigli", beds=1100),
            _inst("pub", "Agenzia Lombarda per la Ricerca e l'Innovazione"),
            _inst("pat", "Associazione Lombarda Pazienti Oncologici", condition="cancer"),
            _inst("fund", "Naviglio Health Capital SGR", style="venture capital firm"),
            _inst("clu", "Rete Lombarda Salute e Innovazione", members=280),
        ),
    ),
    Region(
        key="south-holland", country="NL", region="South Holland", city="Leiden",
        cluster="health-holland",
        partnerships=(), size=16, n_large=2, population_m=3.8,
        strengths={"biotech": 3, "pharma": 2, "veterinary": 1.5, "ai_and_data": 1,
                   "diagnostics": 1, "nanohealth": 1},
        places=("Rijnland", "Duin", "Bollenstreek", "Merenwijk", "Oude Rijn", "Veenweide"),
        sme_form="B.V.", large_form="N.V.", programme="TKI-LSH",
        institutions=(
            _inst("uni", "Universiteit van Rijnland", sectors=("biotech", "pharma", "ai_and_data"),
                  students=30000),
            _inst("rto", "Instituut voor Translationele Vaccinologie Zuid-Holland",
                  sectors=("pharma", "biotech", "veterinary")),
            _inst("hosp", "Rijnland Universitair Medisch Centrum", beds=900),
            _inst("pub", "Ontwikkelingsmaatschappij Zuid-Hollandse Kust"),
            _inst("pat", "Vereniging voor Zeldzame Bloedziekten", condition="rare blood disorders"),
            _inst("fund", "Duin & Rijn Life Science Fund", style="venture capital firm"),
            _inst("clu", "Rijnland Bio Science Park Foundation", members=200),
            _inst("oth", "Stichting Diervrije Innovatie Rijnland",
                  sectors=("biotech", "veterinary"), offers=("training", "dissemination"),
                  desc="A foundation promoting animal-free research methods; it funds small "
                       "validation studies of organoid and organ-on-chip models and trains "
                       "laboratory staff."),
        ),
    ),
    Region(
        key="ireland", country="IE", region="West of Ireland", city="Galway",
        cluster="ireland-medtech",
        partnerships=(), size=14, n_large=2, population_m=0.9,
        strengths={"medtech": 3, "pharma": 1.5, "diagnostics": 1, "functional_food": 1,
                   "veterinary": 1, "digital_therapeutics": 1},
        places=("Corrib", "Connemara", "Burren", "Shannon", "Aran", "Moycullen", "Claddagh"),
        sme_form="Ltd", large_form="DAC", programme="DTIF",
        institutions=(
            _inst("uni", "National University of the Atlantic Coast",
                  sectors=("medtech", "pharma", "veterinary"), students=19000),
            _inst("rto", "Corrib Centre for Biomedical Engineering",
                  sectors=("medtech", "nanohealth")),
            _inst("hosp", "Corrib University Hospital", beds=700),
            _inst("pub", "Western Enterprise and Innovation Agency"),
            _inst("pat", "Irish Network for Arthritis Patients", condition="rheumatoid arthritis"),
            _inst("fund", "Atlantic Medtech Seed Fund", sectors=("medtech", "diagnostics"),
                  style="seed fund"),
            _inst("clu", "Atlantic MedTech Cluster CLG", sectors=("medtech", "business_services"),
                  members=110),
        ),
    ),
    Region(
        key="estonia", country="EE", region="Harju County", city="Tallinn", cluster="chealth",
        partnerships=("bright", "ai4diag"), size=12, n_large=1, population_m=0.6,
        strengths={"ehealth": 3, "ai_and_data": 2, "digital_therapeutics": 2, "diagnostics": 1,
                   "biotech": 1},
        places=("Toompea", "Kadriorg", "Pirita", "Emajõgi", "Lahemaa", "Saaremaa"),
        sme_form="OÜ", large_form="AS", programme="EIS",
        institutions=(
            _inst("uni", "Baltic University of Digital Health",
                  sectors=("ehealth", "ai_and_data", "digital_therapeutics"), students=11000),
            _inst("rto", "Harju Institute for Health Informatics",
                  sectors=("ehealth", "ai_and_data")),
            _inst("hosp", "Kadriorg Clinical Hospital Foundation", beds=1150),
            _inst("pub", "Estonian Health Innovation Agency"),
            _inst("pat", "Estonian Association of People with Kidney Disease",
                  condition="chronic kidney disease"),
            _inst("clu", "Baltic Connected Health Cluster MTÜ",
                  sectors=("ehealth", "ai_and_data", "business_services"), members=75),
        ),
    ),
    Region(
        key="lesser-poland", country="PL", region="Lesser Poland", city="Kraków",
        cluster="lsc-krakow",
        partnerships=(), size=12, n_large=1, population_m=3.4,
        strengths={"pharma": 2, "biotech": 2, "cosmetics": 2, "medtech": 1, "ai_and_data": 1},
        places=("Wawel", "Wisła", "Tatry", "Podgórze", "Zabierzów", "Pieniny"),
        sme_form="sp. z o.o.", large_form="S.A.", programme="NCBR",
        institutions=(
            _inst("uni", "Akademia Medyczna Małopolska",
                  sectors=("pharma", "biotech", "cosmetics"), students=14000),
            _inst("rto", "Instytut Biotechnologii Farmaceutycznej Podgórze",
                  sectors=("pharma", "biotech", "cosmetics")),
            _inst("hosp", "Szpital Uniwersytecki Nadwiślański", beds=1300),
            _inst("pub", "Małopolskie Centrum Innowacji w Zdrowiu"),
            _inst("pat", "Stowarzyszenie Pacjentów z Łuszczycą", condition="psoriasis"),
            _inst("clu", "Klaster Nauk o Życiu Wisła", members=70),
        ),
    ),
    Region(
        key="quebec", country="CA", region="Quebec", city="Sherbrooke",
        cluster="sherbrooke-innopole",
        partnerships=("tim",), size=14, n_large=1, population_m=0.5,
        strengths={"medtech": 2, "nanohealth": 2, "pharma": 2, "veterinary": 1, "ai_and_data": 1,
                   "diagnostics": 1, "biotech": 1},
        places=("Magog", "Orford", "Memphrémagog", "Saint-François", "Coaticook", "Massawippi",
                "Appalaches"),
        sme_form="inc.", large_form="inc.", programme="MEIE-QC",
        institutions=(
            _inst("uni", "Université des Cantons-de-l'Est",
                  sectors=("pharma", "nanohealth", "veterinary"), students=31000),
            _inst("rto", "Institut de nanotechnologies médicales de l'Estrie",
                  sectors=("nanohealth", "medtech", "diagnostics")),
            _inst("hosp", "Centre hospitalier universitaire du Lac-Magog", beds=700),
            _inst("pub", "Développement économique Estrie-Appalaches"),
            _inst("fund", "Capital Santé Orford", style="regional investment fund"),
            _inst("clu", "Parc scientifique des Cantons-de-l'Est", members=95),
            _inst("oth", "Coopérative de santé numérique de l'Estrie", sectors=("ehealth",),
                  offers=("living_lab", "codesign"),
                  desc="A cooperative of family physicians, nurses and citizens that pilots "
                       "digital health services in rural primary care."),
        ),
    ),
    Region(
        key="massachusetts", country="US", region="Massachusetts", city="Boston",
        cluster="massbio",
        partnerships=(), size=12, n_large=2, population_m=7.0,
        strengths={"biotech": 3, "pharma": 2, "ai_and_data": 2, "medtech": 1},
        places=("Back Bay", "Fenway", "Mystic", "Neponset", "Berkshire", "Merrimack", "Beacon"),
        sme_form="Inc.", large_form="Corp.", programme="NIH-SBIR",
        institutions=(
            _inst("uni", "Bay State Institute of Biomedical Engineering",
                  sectors=("medtech", "biotech", "ai_and_data"), students=12000),
            _inst("rto", "Neponset Center for Genomic Medicine",
                  sectors=("biotech", "diagnostics", "ai_and_data")),
            _inst("hosp", "Mystic River Medical Center", beds=1000),
            _inst("fund", "Beacon Hill Bio Partners LP", sectors=("biotech", "pharma"),
                  style="venture capital firm"),
            _inst("clu", "Commonwealth Biotech Alliance", members=1300),
        ),
    ),
    Region(
        key="ontario", country="CA", region="Ontario", city="Toronto",
        cluster="ontario-health-innovation",
        partnerships=(), size=10, n_large=1, population_m=15.0,
        strengths={"ai_and_data": 3, "digital_therapeutics": 2, "medtech": 2, "ehealth": 2,
                   "pharma": 1},
        places=("Humber", "Don Valley", "Etobicoke", "Muskoka", "Algonquin", "Huron"),
        sme_form="Inc.", large_form="Inc.", programme="ON-INNOV",
        institutions=(
            _inst("uni", "Lakeshore University of Health Sciences",
                  sectors=("ai_and_data", "digital_therapeutics", "ehealth"), students=40000),
            _inst("rto", "Humber Institute for Medical AI", sectors=("ai_and_data", "ehealth")),
            _inst("hosp", "Don Valley Health Sciences Centre", beds=1200),
            _inst("fund", "Muskoka Digital Health Ventures",
                  sectors=("ehealth", "digital_therapeutics", "ai_and_data"),
                  style="venture capital firm"),
            _inst("clu", "Toronto Health Innovation Hub", members=300),
        ),
    ),
    Region(
        key="brussels", country="BE", region="Brussels-Capital Region", city="Brussels",
        cluster="medic-nest",
        partnerships=(), size=2, n_large=0, population_m=1.2,
        strengths={"digital_therapeutics": 1, "ehealth": 1, "diagnostics": 1},
        places=("Sablon",),
        sme_form="SRL", large_form="SA", programme="EU",
        institutions=(
            _inst("pat", "European Digital Health Patients Alliance",
                  condition="chronic conditions", european=True),
            _inst("fund", "Pan-European Diagnostics Investment Partners",
                  sectors=("diagnostics", "ai_and_data"), style="venture capital firm",
                  european=True, country="LU", region="Luxembourg", city="Luxembourg"),
        ),
    ),
)
# fmt: on
REGION_BY_KEY = {r.key: r for r in REGIONS}

# Interreg programmes linking neighbouring regions, and the prefix used in references.
INTERREG = (
    ("skane", "denmark", "INTERREG-OKS", "Öresund-Kattegat-Skagerrak"),
    ("hauts-de-france", "limburg", "INTERREG-FWVL", "France-Wallonie-Vlaanderen"),
    ("limburg", "south-holland", "INTERREG-VL-NL", "Flanders-Netherlands"),
    ("ostergotland", "estonia", "INTERREG-CB", "Central Baltic"),
    ("ireland", "wales", "INTERREG-IE-WA", "Ireland-Wales"),
    ("bavaria", "lombardy", "INTERREG-ALPS", "Alpine Space"),
    ("lesser-poland", "bavaria", "INTERREG-CE", "Central Europe"),
)

# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------

SECTOR_NAME_WORDS = {
    "pharma": ("Pharma", "Therapeutics", "Pharmaceuticals"),
    "biotech": ("Bio", "Biologics", "Bioscience", "Cell Therapeutics", "Genomics"),
    "medtech": ("Medical", "MedTech", "Devices", "Surgical", "Orthopaedics"),
    "diagnostics": ("Diagnostics", "Dx", "Biosensing", "Assays"),
    "ehealth": ("Health", "Connected Care", "Telehealth", "Care Technologies"),
    "ai_and_data": ("Analytics", "AI", "Data Labs", "Intelligence"),
    "nanohealth": ("Nanomedicine", "Nanotech", "NanoSystems"),
    "functional_food": ("Nutrition", "Foods", "Nutrascience"),
    "business_services": ("Regulatory", "Consulting", "Advisory", "Life Science Partners"),
    "digital_therapeutics": ("Digital Therapeutics", "Mind", "Rehab"),
    "cosmetics": ("Cosmetics", "Skin Science", "Dermo Labs"),
    "veterinary": ("Animal Health", "Vet", "Veterinary"),
}
COINED_STEMS = {
    "pharma": ("Corv", "Thal", "Pharv", "Medan", "Quin"),
    "biotech": ("Cyt", "Gen", "Prot", "Vect", "Imm"),
    "medtech": ("Ort", "Card", "Stent", "Sur", "Kin"),
    "diagnostics": ("Seps", "Assa", "Lum", "Detect", "Mark"),
    "ehealth": ("Car", "Tel", "Vit", "Hom", "Lin"),
    "ai_and_data": ("Neur", "Dat", "Pix", "Cogn", "Vis"),
    "nanohealth": ("Nan", "Quant", "Graph", "Lip", "Fulle"),
    "functional_food": ("Nutr", "Oat", "Ferm", "Gran", "Vel"),
    "business_services": ("Regul", "Compl", "Strat", "Valid", "Acc"),
    "digital_therapeutics": ("Calm", "Somn", "Mov", "Ment", "Thrv"),
    "cosmetics": ("Derm", "Cutan", "Lucen", "Epid", "Aur"),
    "veterinary": ("Vet", "Anim", "Herd", "Pec", "Aqu"),
}
COINED_ENDINGS = (
    "ora",
    "ivex",
    "antis",
    "ygen",
    "olia",
    "exa",
    "iq",
    "ova",
    "entis",
    "arion",
    "ithm",
    "elle",
    "oryx",
    "umen",
    "axis",
    "ivo",
)
# Family or brand names for large companies, by country, so a Danish group sounds Danish.
LARGE_STEMS = {
    "ES": ("Ferrandis", "Vallbona", "Serracant", "Alcora"),
    "FR": ("Delacroix", "Vauclair", "Maréchal", "Belvance"),
    "SE": ("Lindqvist", "Ekholm", "Sjöberg", "Nordavia"),
    "GB": ("Whitcombe", "Carrow", "Ashdown", "Grantham"),
    "DK": ("Mølgaard", "Kjærsgaard", "Halberg", "Valdemar"),
    "IT": ("Bellcastro", "Marenco", "Sanvigo", "Trivalia"),
    "BE": ("Vandermeulen", "Haverbeke", "Corvena", "Maesfort"),
    "DE": ("Kessler-Brandt", "Steinhofer", "Helvora", "Hausmann"),
    "NL": ("Oudendijk", "Brinkhorst", "Van Rijswijk", "Arvesta"),
    "IE": ("Corrigan", "Kilbride", "Fennelly", "Ardmore"),
    "EE": ("Vahtra", "Kaljuste", "Rannamaa"),
    "PL": ("Kowalczyk", "Wojtaszek", "Zielonka"),
    "CA": ("Beaulac", "Laurentis", "Gagnon-Whitby"),
    "US": ("Ridgeway", "Holloway", "Carver-Lane"),
}
LARGE_WORDS = {
    "pharma": "Pharma",
    "biotech": "Biologics",
    "medtech": "Medical",
    "diagnostics": "Diagnostics",
    "ehealth": "Health Systems",
    "ai_and_data": "Health Informatics",
    "nanohealth": "Advanced Materials",
    "functional_food": "Nutrition",
    "business_services": "Clinical Services",
    "digital_therapeutics": "Digital Health",
    "cosmetics": "Cosmetics",
    "veterinary": "Animal Health",
}
# Real company names that the generator could otherwise produce by chance.
# fmt: off
DENIED_NAMES = (
    "Genmab", "Cytiva", "Cytiq", "Lumora", "Qiagen", "Biocartis", "Genentech", "Ferring",
    "Meridian", "Kinova", "Novozymes", "Cardiome", "Kinaxis", "Neuraxis", "Corventis", "Complexa",
    "Quantexa", "Genova", "Aurora", "Mentora", "Nanova", "Vectura", "Axovant", "Cellect",
)
# fmt: on


_NON_DECOMPOSING = str.maketrans(
    {"ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ł": "l", "Ł": "L", "ß": "ss"}
)
LEGAL_FORMS = (
    " sp. z o.o.",
    " S.p.A.",
    " SGEIC",
    " B.V.",
    " N.V.",
    " GmbH",
    " S.A.",
    " SAS",
    " ApS",
    " A/S",
    " Ltd",
    " plc",
    " Srl",
    " SRL",
    " DAC",
    " inc.",
    " Inc.",
    " Corp.",
    " SGR",
    " e.V.",
    " vzw",
    " MTÜ",
    " CLG",
    " OÜ",
    " LP",
    " SL",
    " SA",
    " AB",
    " BV",
    " NV",
    " AG",
    " AS",
)


def strip_legal_form(name: str) -> str:
    """The name without a trailing legal form.

    >>> strip_legal_form("Kullaberg Life Science Invest AB")
    'Kullaberg Life Science Invest'
    >>> strip_legal_form("Wawel Pharma sp. z o.o.")
    'Wawel Pharma'
    """
    for suffix in LEGAL_FORMS:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def slugify(text: str) -> str:
    """Lower-case ASCII slug for web addresses.

    >>> slugify("Höje Science Village AB")
    'hoje-science-village-ab'
    >>> slugify("Duin & Rijn Life Science Fund")
    'duin-rijn-life-science-fund'
    """
    ascii_text = (
        unicodedata.normalize("NFKD", text.translate(_NON_DECOMPOSING))
        .encode("ascii", "ignore")
        .decode("ascii")
        .lower()
    )
    words = "".join(ch if ch.isalnum() else " " for ch in ascii_text).split()
    return "-".join(words)


# --------------------------------------------------------------------------------------------
# Organisations
# --------------------------------------------------------------------------------------------


@dataclass
class Org:
    key: str
    name: str
    kind: str
    sectors: list[str]
    region: Region
    country: str
    region_name: str
    city: str
    clusters: list[str] = field(default_factory=list)
    offers: list[Capability] = field(default_factory=list)
    offer_texts: list[str] = field(default_factory=list)
    seek_texts: list[str] = field(default_factory=list)
    seek_caps: list[Capability] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    description: str | None = None
    maturity: int | None = None
    website: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    has_text: bool = True
    is_active: bool = True
    propensity: float = 1.0
    founded: int = 2000


def with_article(region_name: str) -> str:
    """A region name as it reads inside a sentence.

    >>> with_article("Capital Region of Denmark")
    'the Capital Region of Denmark'
    >>> with_article("Skåne")
    'Skåne'
    """
    needs_article = ("Capital Region", "West of", "Brussels-Capital")
    return f"the {region_name}" if region_name.startswith(needs_article) else region_name


def _weighted_choice(rng: random.Random, items: list[Any], weights: list[float]) -> Any:
    return rng.choices(items, weights=weights, k=1)[0]


def _weighted_sample(
    rng: random.Random, items: list[Any], weights: list[float], k: int
) -> list[Any]:
    """k distinct items, each draw proportional to weight; zero-weight items are never drawn."""
    pool = [(item, w) for item, w in zip(items, weights, strict=True) if w > 0]
    chosen: list[Any] = []
    while pool and len(chosen) < k:
        total = sum(w for _, w in pool)
        target = rng.random() * total
        acc = 0.0
        index = len(pool) - 1
        for i, (_, w) in enumerate(pool):
            acc += w
            if target < acc:
                index = i
                break
        chosen.append(pool.pop(index)[0])
    return chosen


# How likely each kind is to join a project / co-author a publication (times its propensity).
PROJECT_FACTORS = {
    "sme": 1.0,
    "large_company": 1.0,
    "university": 1.2,
    "research_organisation": 1.2,
    "hospital_or_care_provider": 1.2,
    "public_body": 0.3,
    "patient_organisation": 0.4,
    "funder_or_investor": 0.05,
    "cluster_or_science_park": 0.4,
    "other": 0.5,
}
PUBLICATION_FACTORS = {
    "university": 3.0,
    "research_organisation": 2.5,
    "hospital_or_care_provider": 2.5,
    "sme": 0.4,
    "large_company": 0.7,
    "patient_organisation": 0.2,
}


PUBLICATION_TEMPLATES = {
    "pharma": (
        "Real-world outcomes in {d}: a registry-based cohort study",
        "Safety and tolerability of a novel oral formulation in {d}: a phase I study",
        "Drug repurposing candidates for {d} identified by network analysis",
    ),
    "biotech": (
        "Organoid drug sensitivity predicts clinical response in {d}",
        "A CRISPR screen identifies new therapeutic targets in {d}",
        "Manufacturing and persistence of allogeneic NK cells in {d}",
    ),
    "medtech": (
        "Feasibility of remote monitoring in {d}: a pilot study",
        "Clinical performance of a new minimally invasive device in {d}",
        "Usability of a home-use device for {d}: a human-factors study",
    ),
    "diagnostics": (
        "A host-response biomarker signature for {d}: a prospective validation",
        "Diagnostic accuracy of a point-of-care test for {d} in primary care",
        "Health-economic evaluation of early detection of {d}",
    ),
    "ehealth": (
        "Telehealth follow-up in {d}: a pragmatic randomised trial",
        "Feasibility of remote monitoring in {d}: a pilot study",
        "Interoperability barriers in digital care pathways for {d}",
    ),
    "ai_and_data": (
        "Performance of a deep-learning model for {d}: a multicentre retrospective study",
        "Federated learning across hospitals for {d}: a validation study",
        "Natural language processing of clinical notes to identify {d}",
    ),
    "nanohealth": (
        "Biodistribution of targeted nanoparticles in models of {d}",
        "Lipid nanoparticle delivery of siRNA in {d}: a preclinical study",
    ),
    "functional_food": (
        "Dietary intervention and gut microbiota in {d}: a randomised crossover study",
        "Oat beta-glucan and cardiometabolic risk markers in {d}",
    ),
    "business_services": (
        "Health-economic evaluation of innovation procurement in {d}",
        "Barriers to market access for SMEs developing products for {d}",
    ),
    "digital_therapeutics": (
        "Digital CBT for {d}: a randomised controlled trial",
        "Co-design of a digital intervention for {d} with patients and carers",
        "Engagement and outcomes of an app-based programme for {d}",
    ),
    "cosmetics": (
        "Barrier repair by a biotech-derived active in {d}: a split-face study",
        "Reconstructed skin models for irritation testing in {d}",
    ),
    "veterinary": (
        "Prevalence and resistance profiles in {d}: a One Health survey",
        "Field evaluation of an on-farm test for {d}",
    ),
}


class DemoBuilder:
    """Builds organisations and collaborations from one seeded random stream."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.orgs: list[Org] = []
        self.collaborations: list[dict[str, Any]] = []
        self._names: set[str] = set()
        self._websites: set[str] = set()
        self._acronyms: set[str] = set()
        self._large_stems: list[str] = []
        self._first_words: set[tuple[str, str]] = set()
        self._offered_in: dict[str, list[Org]] = {}

    # -- names ------------------------------------------------------------------------------

    def _unique(self, name: str, country: str) -> bool:
        """Accept a new company name: unseen, not a known real company, and not sharing its
        first word with another company of the same country (two "Garraf ..." firms confuse)."""
        first_word = (country, name.split(" ")[0])
        if (
            name in self._names
            or first_word in self._first_words
            or any(d.lower() in name.lower() for d in DENIED_NAMES)
        ):
            return False
        self._names.add(name)
        self._first_words.add(first_word)
        return True

    def _company_name(self, region: Region, sector: str, is_large: bool) -> str:
        rng = self.rng
        for _ in range(200):
            if is_large:
                stems = [t for t in LARGE_STEMS[region.country] if t not in self._large_stems]
                stem = rng.choice(stems)
                self._large_stems.append(stem)
                name = f"{stem} {LARGE_WORDS[sector]} {region.large_form}"
            elif rng.random() < 0.45:
                name = f"{rng.choice(region.places)} {rng.choice(SECTOR_NAME_WORDS[sector])}"
                name = f"{name} {region.sme_form}"
            else:
                coined = rng.choice(COINED_STEMS[sector]) + rng.choice(COINED_ENDINGS)
                if rng.random() < 0.6:
                    coined = f"{coined} {rng.choice(SECTOR_NAME_WORDS[sector])}"
                name = f"{coined} {region.sme_form}"
            if self._unique(name, region.country):
                return name
        raise RuntimeError(f"could not find a unique company name for {region.key}/{sector}")

    def _website(self, name: str, country: str) -> str:
        slug = slugify(strip_legal_form(name))
        if slug in self._websites:
            slug = f"{slug}-{country.lower()}"
        self._websites.add(slug)
        return f"https://{slug}.example"

    # -- organisations ------------------------------------------------------------------------

    def build_organisations(self) -> None:
        for region in REGIONS:
            for inst in region.institutions:
                self._add_institution(region, inst)
            n_companies = region.size - len(region.institutions)
            for i in range(n_companies):
                self._add_company(region, is_large=i < region.n_large)
        self._assign_clusters()
        self._assign_text_and_activity()
        for org in self.orgs:
            if org.has_text:
                self._assign_offers(org)
        for org in self.orgs:
            for cap in org.offers:
                self._offered_in.setdefault(cap.key, []).append(org)
        for org in self.orgs:
            if org.has_text:
                self._assign_seeks(org)
                self._assign_keywords(org)
                org.description = self._describe(org)
        self._assign_propensity()

    def _new_org(
        self,
        region: Region,
        kind: str,
        name: str,
        sectors: list[str],
        extra: dict[str, Any] | None = None,
    ) -> Org:
        extra = extra or {}
        org = Org(
            key=f"demo-{len(self.orgs) + 1:04d}",
            name=name,
            kind=kind,
            sectors=sectors,
            region=region,
            country=extra.get("country", region.country),
            region_name=extra.get("region", region.region),
            city=extra.get("city", region.city),
            extra=extra,
        )
        org.website = self._website(name, org.country)
        self.orgs.append(org)
        return org

    def _region_sectors(
        self,
        region: Region,
        k: int,
        allowed: tuple[str, ...] = SECTORS,
        boost: dict[str, float] | None = None,
    ) -> list[str]:
        boost = boost or {}
        items = [s for s in SECTORS if s in allowed]
        weights = [(region.strengths.get(s, 0.15) + 0.05) * boost.get(s, 1.0) for s in items]
        return _weighted_sample(self.rng, items, weights, k)

    def _add_institution(self, region: Region, inst: Institution) -> None:
        rng = self.rng
        kind = inst.kind
        if "sectors" in inst.extra:
            sectors = list(inst.extra["sectors"])
        elif kind == "university":
            sectors = self._region_sectors(region, rng.choice((2, 3, 3)))
        elif kind == "research_organisation":
            sectors = self._region_sectors(
                region, rng.choice((1, 2, 2)), boost={"nanohealth": 2.0, "biotech": 1.5}
            )
        elif kind == "hospital_or_care_provider":
            sectors = self._region_sectors(
                region,
                rng.choice((2, 3)),
                allowed=(
                    "medtech",
                    "diagnostics",
                    "ehealth",
                    "pharma",
                    "digital_therapeutics",
                    "ai_and_data",
                    "biotech",
                    "functional_food",
                ),
                boost={"medtech": 2.0, "diagnostics": 2.0, "ehealth": 2.0},
            )
        elif kind == "patient_organisation":
            sectors = self._region_sectors(
                region, rng.choice((1, 2)), allowed=("pharma", "digital_therapeutics", "ehealth")
            )
        elif kind == "funder_or_investor":
            sectors = self._region_sectors(
                region,
                rng.choice((2, 3)),
                allowed=(
                    "medtech",
                    "diagnostics",
                    "biotech",
                    "pharma",
                    "ehealth",
                    "digital_therapeutics",
                    "ai_and_data",
                ),
            )
        elif kind == "public_body":
            sectors = ["business_services", *self._region_sectors(region, 1)]
        elif kind == "cluster_or_science_park":
            sectors = [
                "business_services",
                *self._region_sectors(
                    region, 2, allowed=tuple(s for s in SECTORS if s != "business_services")
                ),
            ]
        else:
            sectors = self._region_sectors(region, 1)
        org = self._new_org(
            region, kind, inst.name, sorted(set(sectors), key=SECTORS.index), dict(inst.extra)
        )
        self._names.add(inst.name)
        if kind == "university":
            org.maturity = rng.choice((2, 3, 3, 4))
        elif kind == "research_organisation":
            org.maturity = rng.choice((3, 4, 4, 5, 6))

    def _add_company(self, region: Region, is_large: bool) -> None:
        rng = self.rng
        kind = "large_company" if is_large else "sme"
        candidates = [c for c in CAPABILITIES if kind in c.offered_by]
        weights = [max(region.strengths.get(s, 0.12) for s in c.sectors) ** 1.5 for c in candidates]
        primary = _weighted_choice(rng, candidates, weights)
        is_service = primary.key in SERVICE_PROVIDERS
        sectors = list(primary.sectors[: 3 if is_service else rng.choice((1, 2, 2))])
        if rng.random() < 0.2 and len(sectors) < 3 and not is_service:
            extra_sector = self._region_sectors(region, 1)[0]
            if extra_sector not in sectors:
                sectors.append(extra_sector)
        name = self._company_name(region, sectors[0], is_large)
        org = self._new_org(region, kind, name, sorted(sectors, key=SECTORS.index))
        org.offers = [primary]
        if is_large:
            org.maturity = None if is_service else rng.choice((8, 9, 9))
            org.founded = rng.randint(1890, 1995)
        elif is_service:
            # A service provider has no technology whose readiness a TRL could describe.
            org.maturity = None
            org.founded = rng.randint(1998, 2021)
        else:
            org.founded = rng.randint(2005, 2023)
            age = LAST_YEAR - org.founded
            low = 2 if age < 5 else 3
            org.maturity = min(9, max(low, round(rng.gauss(3 + age * 0.3, 1.5))))

    def _assign_clusters(self) -> None:
        rng = self.rng
        for org in self.orgs:
            region = org.region
            if org.extra.get("european"):
                org.clusters = (
                    ["medic-nest", "bright"] if org.kind == "patient_organisation" else ["ai4diag"]
                )
                continue
            always = org.kind in ("cluster_or_science_park", "public_body")
            p_member = (
                0.95
                if org.kind in ("university", "research_organisation", "hospital_or_care_provider")
                else 0.85
            )
            clusters = [region.cluster] if always or rng.random() < p_member else []
            for partnership in region.partnerships:
                if always and org.kind == "cluster_or_science_park":
                    clusters.append(partnership)
                elif partnership == "ai4diag":
                    if (
                        set(org.sectors) & {"diagnostics", "ai_and_data"}
                        and org.kind
                        in ("sme", "research_organisation", "hospital_or_care_provider")
                        and rng.random() < 0.5
                    ):
                        clusters.append(partnership)
                elif org.kind in ("sme", "university", "public_body") and rng.random() < 0.12:
                    clusters.append(partnership)
            org.clusters = clusters

    def _assign_text_and_activity(self) -> None:
        """~5 % of organisations have no free text at all; ~10 % have no collaborations."""
        rng = self.rng
        n = len(self.orgs)
        textless_weight = {
            "sme": 1.0,
            "other": 0.5,
            "funder_or_investor": 0.6,
            "patient_organisation": 0.6,
            "large_company": 0.3,
        }
        pool = [o for o in self.orgs if not o.extra.get("european")]
        textless = _weighted_sample(
            rng, pool, [textless_weight.get(o.kind, 0.0) for o in pool], round(n * 0.05)
        )
        for org in textless:
            org.has_text = False
            org.offers = []
            org.maturity = None
            org.clusters = []
            org.website = None
        isolated_weight = {
            "sme": 1.0,
            "patient_organisation": 0.8,
            "funder_or_investor": 0.8,
            "other": 0.6,
        }
        weights = [
            isolated_weight.get(o.kind, 0.0)
            * (3.0 if not o.has_text else 1.0)
            * (2.0 if o.founded >= 2020 else 1.0)
            for o in pool
        ]
        for org in _weighted_sample(rng, pool, weights, round(n * 0.10)):
            org.is_active = False

    def _offer_text(self, cap: Capability, org: Org) -> str:
        text = self.rng.choice(cap.offers)
        return self._fill(text, org)

    def _fill(self, text: str, org: Org) -> str:
        rng = self.rng
        if "{market}" in text:
            markets = [m for m in MARKETS if org.country not in MARKET_HOME[m]]
            text = text.replace("{market}", rng.choice(markets))
        if "{topic}" in text:
            condition = org.extra.get("condition")
            topic = condition or rng.choice(SECTOR_DISEASES[rng.choice(org.sectors)])
            text = text.replace("{topic}", topic)
        return text

    def _assign_offers(self, org: Org) -> None:
        rng = self.rng
        if "offers" in org.extra:
            org.offers = [CAPABILITY_BY_KEY[k] for k in org.extra["offers"]]
        else:
            k = rng.choice(OFFER_COUNTS[org.kind])
            chosen = list(org.offers)
            by_kind = [c for c in CAPABILITIES if org.kind in c.offered_by and c not in chosen]
            if org.kind == "sme":
                # An SME's further offers sit right beside its main one, so the profile reads
                # like one small business, not a catalogue.
                keys = COMPANIONS.get(chosen[0].key, ())
                pool = [
                    c
                    for c in by_kind
                    if c.key in keys and len(set(org.sectors) | set(c.sectors)) <= 3
                ]
                weights = [1.0] * len(pool)
            elif org.kind == "large_company":
                primary = chosen[0]
                pool = [
                    c
                    for c in by_kind
                    if set(c.sectors) <= set(org.sectors) and set(c.sectors) & set(primary.sectors)
                ]
                weights = [3.0 if c.sectors[0] == primary.sectors[0] else 1.0 for c in pool]
            else:
                pool = [c for c in by_kind if set(c.sectors) & set(org.sectors)]
                weights = [3.0 if c.sectors[0] in org.sectors else 1.0 for c in pool]
            chosen += _weighted_sample(rng, pool, weights, k - len(chosen))
            if org.kind == "sme":
                sectors = list(org.sectors)
                sectors += [c.sectors[0] for c in chosen if c.sectors[0] not in sectors]
                org.sectors = sorted(sectors[:3], key=SECTORS.index)
            generic = [CAPABILITY_BY_KEY[key] for key in GENERIC_OFFERS.get(org.kind, ())]
            if len(chosen) < k or (generic and rng.random() < 0.35):
                pool = [c for c in generic if c not in chosen]
                chosen += _weighted_sample(rng, pool, [1.0] * len(pool), max(1, k - len(chosen)))
            org.offers = chosen[:4]
        org.offer_texts = [self._offer_text(c, org) for c in org.offers]

    def _seek_is_relevant(self, cap: Capability, org: Org) -> bool:
        """Whether an organisation would plausibly ask for this capability.

        Companies and labs look for what their sectors need (``NEEDS``) at their stage
        (``NEED_STAGE``), plus support services; other kinds ask for what the catalogue lists
        them as seeking.
        """
        if org.kind not in TECH_KINDS:
            return True
        if org.kind in COMPANY_KINDS and org.offers[0].key in SERVICE_PROVIDERS:
            return cap.key in SERVICE_NEEDS
        sectors = [org.offers[0].sectors[0]] if org.kind in COMPANY_KINDS else org.sectors
        if org.kind in COMPANY_KINDS:
            sectors += [s for s in org.sectors if s not in sectors]
        needed = cap.key in GENERIC_NEEDS or any(cap.key in NEEDS[s] for s in sectors)
        if not needed:
            return False
        window = NEED_STAGE.get(cap.key)
        if window is None or org.maturity is None:
            return True
        return window[0] <= org.maturity <= window[1]

    def _assign_seeks(self, org: Org) -> None:
        """Seeks favour what organisations of other sectors and other countries offer."""
        rng = self.rng
        candidates: list[Capability] = []
        weights: list[float] = []
        cross_candidates: list[Capability] = []
        own = set(org.sectors)
        for cap in CAPABILITIES:
            if org.kind not in cap.sought_by or cap in org.offers:
                continue
            if not self._seek_is_relevant(cap, org):
                continue
            providers = self._offered_in.get(cap.key, [])
            if not cap.offered_by:
                weight = 1.0
            elif not providers:
                continue
            else:
                weight = 1.0
                abroad = [p for p in providers if p.country != org.country]
                if abroad:
                    weight *= 2.0
                if set(cap.sectors) & own:
                    weight *= 1.5  # a need close to one's own field is the common case
                if set(cap.sectors) == {"business_services"}:
                    weight *= 0.5
                if any(not set(p.sectors) & own for p in abroad):
                    cross_candidates.append(cap)
            candidates.append(cap)
            weights.append(weight)
        k = rng.choice(SEEK_COUNTS.get(org.kind, (1, 2, 2, 3)))
        chosen: list[Capability] = []
        if cross_candidates and rng.random() < 0.45:
            chosen.append(rng.choice(cross_candidates))
        pool = [(c, w) for c, w in zip(candidates, weights, strict=True) if c not in chosen]
        chosen += _weighted_sample(rng, [c for c, _ in pool], [w for _, w in pool], k - len(chosen))
        org.seek_caps = chosen
        org.seek_texts = [self._fill(rng.choice(c.seeks), org) for c in chosen]

    def _assign_keywords(self, org: Org) -> None:
        keywords: list[str] = []
        for cap in org.offers:
            keywords.extend(cap.keywords[:2])
        if org.seek_caps and self.rng.random() < 0.5:
            keywords.append(org.seek_caps[0].keywords[0])
        if org.extra.get("condition"):
            keywords.append(org.extra["condition"])
        deduplicated: list[str] = []
        for word in keywords:
            if word not in deduplicated:
                deduplicated.append(word)
        org.keywords = deduplicated[:6]

    def _assign_propensity(self) -> None:
        """Heavy-tailed willingness to collaborate: hubs emerge among hospitals and big firms."""
        base = {
            "sme": 0.8,
            "large_company": 4.0,
            "university": 5.0,
            "research_organisation": 3.0,
            "hospital_or_care_provider": 5.0,
            "public_body": 1.5,
            "patient_organisation": 0.8,
            "funder_or_investor": 0.6,
            "cluster_or_science_park": 2.5,
            "other": 0.8,
        }
        first_seen: set[tuple[str, str]] = set()
        for org in self.orgs:
            if not org.is_active:
                org.propensity = 0.0
                continue
            tail = min(self.rng.paretovariate(1.4), 12.0)
            flagship = (org.region.key, org.kind)
            bonus = (
                2.0
                if org.kind in ("hospital_or_care_provider", "university")
                and (flagship not in first_seen)
                else 1.0
            )
            first_seen.add(flagship)
            org.propensity = base[org.kind] * tail * bonus * (0.5 if not org.has_text else 1.0)

    # -- descriptions ---------------------------------------------------------------------

    def _describe(self, org: Org) -> str:
        rng = self.rng
        kind = org.kind
        country = COUNTRY_NAMES[org.country]
        fields = [SECTOR_FIELDS[s] for s in org.sectors]
        if len(fields) == 1:
            field_text = fields[0]
        else:
            field_text = ", ".join(fields[:-1]) + " and " + fields[-1]
        short = strip_legal_form(org.name)
        if kind == "sme" and org.offers[0].key in SERVICE_PROVIDERS:
            focus = org.offers[0].focus or org.offer_texts[0]
            provider = SERVICE_PROVIDERS[org.offers[0].key]
            clients = rng.choice((15, 30, 40, 60, 120))
            where = "North America and Europe" if org.country in ("CA", "US") else "Europe"
            opener = rng.choice(
                (
                    f"{short} is a {org.city}-based {provider} specialised in {focus}.",
                    f"Founded in {org.founded} in {org.city}, {short} is a {provider} offering "
                    f"{focus}.",
                )
            )
            return f"{opener} It works with about {clients} life-science clients across {where}."
        if kind == "sme":
            focus = org.offers[0].focus or org.offer_texts[0]
            stage_noun = "start-up" if org.founded >= 2018 else "company"
            opener = rng.choice(
                (
                    f"{short} develops {focus}.",
                    f"{short} is a {org.city}-based {stage_noun} working on {focus}.",
                    f"Founded in {org.founded} in {org.city}, {short} develops {focus}.",
                )
            )
            if rng.random() < 0.3 and org.founded >= 2008:
                universities = [
                    o
                    for o in self.orgs
                    if o.region is org.region and o.kind in ("university", "research_organisation")
                ]
                if universities:
                    parent = rng.choice(universities).name
                    opener = f"{short} is a {org.founded} spin-off of {parent} developing {focus}."
            return f"{opener} {self._stage_sentence(org, country)}"
        if kind == "large_company":
            focus = org.offers[0].focus or org.offer_texts[0]
            employees = rng.choice((250, 400, 600, 900, 1500, 2200))
            owner = rng.choice(("multinational", "family-owned", "listed"))
            return (
                f"{short} runs the {org.city} R&D and production site of a {owner} "
                f"{SECTOR_INVESTMENT[org.sectors[0]]} group, with about {employees} employees "
                f"in {with_article(org.region_name)}. The site focuses on {focus} and runs an "
                f"open-innovation programme with start-ups, hospitals and universities."
            )
        if kind == "university":
            students = org.extra.get("students", 20000)
            return (
                f"{org.name} is a public university with about {students:,} students and "
                f"research groups in {field_text}. Its technology transfer office supports "
                f"spin-offs, licensing and contract research with companies."
            )
        if kind == "research_organisation":
            return (
                f"{org.name} is a publicly funded research institute in {org.city} working "
                f"with industry on {field_text}. It offers contract research, pilot-scale "
                f"facilities and access to specialised equipment."
            )
        if kind == "hospital_or_care_provider":
            beds = org.extra.get("beds", 800)
            specialties = rng.sample(
                (
                    "cardiology",
                    "oncology",
                    "neurology",
                    "emergency medicine",
                    "infectious diseases",
                    "geriatrics",
                    "orthopaedics",
                    "radiology",
                    "clinical microbiology",
                    "paediatrics",
                ),
                2,
            )
            return (
                f"{org.name} is a {beds:,}-bed university hospital serving "
                f"{with_article(org.region_name)}, with strong departments in {specialties[0]} and "
                f"{specialties[1]}. Its clinical innovation unit organises validation "
                f"studies, pilots and co-development with companies."
            )
        if kind == "public_body":
            return (
                f"{org.name} is the public agency supporting research and innovation in "
                f"{with_article(org.region_name)}. It manages regional R&D funding under the smart "
                f"specialisation strategy (S3) and supports innovation procurement in health."
            )
        if kind == "patient_organisation":
            condition = org.extra.get("condition", "chronic disease")
            scope = "across Europe" if org.extra.get("european") else f"in {country}"
            return (
                f"{org.name} represents people living with {condition} and their families "
                f"{scope}. It runs a patient research panel and works with researchers and "
                f"companies on co-design, trial recruitment and dissemination."
            )
        if kind == "funder_or_investor":
            style = org.extra.get("style", "venture capital firm")
            currency = {"GB": "GBP", "US": "USD", "CA": "CAD"}.get(org.country, "EUR")
            low, high = rng.choice(((0.2, 1.5), (0.5, 3), (1, 5), (2, 10)))
            invest = " and ".join(SECTOR_INVESTMENT[s] for s in org.sectors[:2])
            return (
                f"{org.name} is a {style} based in {org.city} investing in {invest} "
                f"companies. First tickets range from {currency} {low:g} to {high:g} million, "
                f"often alongside regional co-investors."
            )
        if kind == "cluster_or_science_park":
            members = org.extra.get("members", 100)
            return (
                f"{org.name} is the life-science and health cluster organisation of "
                f"{with_article(org.region_name)}, with about {members} members. It offers "
                f"matchmaking, internationalisation support, project development and training."
            )
        return str(
            org.extra.get(
                "desc",
                f"{org.name} works with the {with_article(org.region_name)} "
                f"life-science community.",
            )
        )

    def _stage_sentence(self, org: Org, country: str) -> str:
        rng = self.rng
        trl = org.maturity
        sector = org.offers[0].sectors[0] if org.offers else org.sectors[0]
        if trl is None:
            clients = rng.choice((15, 30, 40, 60, 120))
            return f"It works with about {clients} life-science clients in Europe."
        if trl <= 3:
            return rng.choice(
                (
                    "Its technology is at proof-of-concept stage in the lab.",
                    "The team is generating the in-vitro data needed for a feasibility study.",
                )
            )
        if trl <= 5:
            return (
                "A prototype has been validated in the lab and the company is preparing its "
                "first studies with clinical partners."
            )
        if trl <= 7:
            context = {
                "medtech": "a multicentre clinical investigation",
                "diagnostics": "a clinical performance study",
                "pharma": "a phase I/II clinical trial",
                "biotech": "a phase I/II clinical trial",
                "nanohealth": "preclinical studies required for a first-in-human trial",
                "ehealth": "pilots with hospitals and municipalities",
                "digital_therapeutics": "a randomised controlled trial",
                "ai_and_data": "a retrospective multicentre validation",
                "functional_food": "a human intervention study",
                "cosmetics": "consumer and dermatological testing",
                "veterinary": "field trials on commercial farms",
            }.get(sector, "pilots with early customers")
            return f"The product is being evaluated in {context} ahead of regulatory submission."
        where = "North America" if org.country in ("CA", "US") else country
        return (
            f"Its product is on the market in {where} and the company is expanding to "
            f"other {'European ' if org.country not in ('CA', 'US') else ''}markets."
        )

    # -- collaborations -----------------------------------------------------------------

    def _year(self, low: int = FIRST_YEAR, high: int = LAST_YEAR) -> int:
        years = list(range(low, high + 1))
        return int(_weighted_choice(self.rng, years, [1.0 + 0.15 * (y - low) for y in years]))

    def _add(
        self, kind: str, year: int, weight: float, prefix: str, title: str, participants: list[Org]
    ) -> dict[str, Any] | None:
        keys = sorted({p.key for p in participants})
        if len(keys) < 2:
            return None
        collaboration = {
            "kind": kind,
            "year": year,
            "weight": weight,
            "reference": f"DEMO-{prefix}-{len(self.collaborations) + 1:04d}",
            "title": title,
            "participants": keys,
        }
        self.collaborations.append(collaboration)
        return collaboration

    def _active(self, predicate: Any = None) -> list[Org]:
        return [o for o in self.orgs if o.is_active and (predicate is None or predicate(o))]

    def _affinity(self, org: Org, sector: str, factors: dict[str, float]) -> float:
        match = 4.0 if sector in org.sectors else 0.5
        return org.propensity * match * factors.get(org.kind, 0.5)

    def _acronym(self, sector: str) -> str:
        heads = {
            "pharma": ("PHARM", "THERA", "CURE", "DRUG"),
            "biotech": ("GENE", "CELL", "BIO"),
            "medtech": ("MED", "DEVICE", "SURG"),
            "diagnostics": ("DIAG", "DETECT", "SENSE"),
            "ehealth": ("CARE", "HOME", "TELE"),
            "ai_and_data": ("DATA", "AI", "FED"),
            "nanohealth": ("NANO", "LIPO", "QUANT"),
            "functional_food": ("NUTRI", "FOOD", "OAT"),
            "business_services": ("SCALE", "GROW", "REG"),
            "digital_therapeutics": ("MIND", "REHAB", "DTX"),
            "cosmetics": ("DERMA", "SKIN", "COSM"),
            "veterinary": ("VET", "HERD", "ONEHEALTH"),
        }[sector]
        tails = (
            "NET",
            "PATH",
            "LINK",
            "BRIDGE",
            "4ALL",
            "HUB",
            "EU",
            "TWIN",
            "FLOW",
            "PLUS",
            "CARE",
            "X",
        )
        for _ in range(100):
            acronym = self.rng.choice(heads) + self.rng.choice(tails)
            if acronym not in self._acronyms:
                self._acronyms.add(acronym)
                return acronym
        return f"{self.rng.choice(heads)}{len(self._acronyms)}"

    def _project_title(self, sector: str, region_name: str) -> str:
        rng = self.rng
        disease = rng.choice(SECTOR_DISEASES[sector])
        templates = {
            "pharma": (
                "Repurposing approved drugs for {d}",
                "Decentralised clinical trials for {d}",
                "Continuous manufacturing of small-molecule APIs",
                "A new oral therapy for {d}: from candidate to phase I",
            ),
            "biotech": (
                "Patient-derived organoids to predict treatment response in {d}",
                "Allogeneic cell therapy for {d}",
                "Scaling up AAV vector manufacturing",
                "Antibody discovery against novel targets in {d}",
            ),
            "medtech": (
                "Wearable monitoring for patients with {d}",
                "Minimally invasive devices for {d}",
                "Antibacterial coatings for orthopaedic implants",
                "3D-printed patient-specific surgical guides",
            ),
            "diagnostics": (
                "Rapid point-of-care diagnosis of {d}",
                "Liquid biopsy for early detection of {d}",
                "Biomarker panel for stratification in {d}",
            ),
            "ehealth": (
                "Home monitoring and early discharge for {d}",
                "Interoperable telehealth services for rural {r}",
                "Digital care pathways for {d}",
            ),
            "ai_and_data": (
                "Federated learning on hospital data for {d}",
                "AI decision support for {d}",
                "Real-world evidence platform for {d}",
            ),
            "nanohealth": (
                "Lipid nanoparticles for targeted therapy of {d}",
                "Nanosensors for non-invasive monitoring",
                "Safe-by-design nanomaterials for medical use",
            ),
            "functional_food": (
                "Personalised nutrition to prevent {d}",
                "Oat-based functional foods for cardiometabolic health",
                "Medical nutrition against malnutrition in older adults",
                "Microbiome-targeted foods for {d}",
            ),
            "business_services": (
                "Cluster services for SME internationalisation",
                "Regulatory capacity building for MDR and IVDR",
                "Joint market-access support for life-science SMEs",
            ),
            "digital_therapeutics": (
                "Digital CBT for {d}",
                "Co-designed digital therapeutics for {d}",
                "Gamified rehabilitation after stroke",
            ),
            "cosmetics": (
                "Animal-free safety testing of cosmetic ingredients",
                "Upcycled plant actives for sensitive skin",
                "Microbiome-friendly skin care for {d}",
            ),
            "veterinary": (
                "One Health surveillance of antimicrobial resistance",
                "On-farm diagnostics for {d}",
                "Alternatives to antibiotics in pig production",
            ),
        }[sector]
        return rng.choice(templates).format(d=disease, r=region_name)

    def _publication_title(self, sector: str) -> str:
        rng = self.rng
        disease = rng.choice(SECTOR_DISEASES[sector])
        return rng.choice(PUBLICATION_TEMPLATES[sector]).format(d=disease)

    def build_collaborations(self) -> None:
        self._cross_cluster_partnerships()
        for _ in range(115):
            self._regional_project()
        for _ in range(8):
            self._strategic_partnership()
        for _ in range(32):
            self._eu_project()
        for _ in range(12):
            self._interreg_project()
        for _ in range(5):
            self._transatlantic_project()
        for _ in range(70):
            self._publication()
        for _ in range(45):
            self._supply()
        for _ in range(20):
            self._network_membership()
        for _ in range(20):
            self._event()
        for _ in range(10):
            self._other()
        self._connect_stragglers()
        self.collaborations.sort(key=lambda c: (c["year"], c["reference"]))

    def _regions_weighted(self) -> Region:
        regions = [r for r in REGIONS if r.key != "brussels"]
        return _weighted_choice(self.rng, regions, [float(r.size) for r in regions])

    def _sector_for(self, region: Region) -> str:
        sectors = list(region.strengths)
        return _weighted_choice(self.rng, sectors, [region.strengths[s] for s in sectors])

    def _regional_project(self) -> None:
        rng = self.rng
        region = self._regions_weighted()
        sector = self._sector_for(region)
        pool = self._active(lambda o: o.region is region)
        k = rng.choice((2, 3, 3, 4, 4, 5, 6))
        participants = _weighted_sample(
            rng, pool, [self._affinity(o, sector, PROJECT_FACTORS) for o in pool], k
        )
        if rng.random() < 0.15:
            nearby = self._active(lambda o: o.country == region.country and o.region is not region)
            if nearby:
                participants += _weighted_sample(
                    rng, nearby, [self._affinity(o, sector, PROJECT_FACTORS) for o in nearby], 1
                )
        weight = rng.choice((1.0, 1.0, 1.0, 1.5))
        self._add(
            "project",
            self._year(),
            weight,
            region.programme,
            self._project_title(sector, region.region),
            participants,
        )

    def _strategic_partnership(self) -> None:
        """Long-term public-private partnerships: few partners, strong ties."""
        rng = self.rng
        region = self._regions_weighted()
        sector = self._sector_for(region)
        hubs = self._active(
            lambda o: (
                o.region is region
                and o.kind
                in ("hospital_or_care_provider", "university", "large_company", "public_body")
            )
        )
        participants = _weighted_sample(
            rng, hubs, [self._affinity(o, sector, PROJECT_FACTORS) for o in hubs], 3
        )
        title = rng.choice(
            (
                f"Strategic partnership for personal health in {region.region}",
                f"Public-private partnership on {SECTOR_FIELDS[sector]}",
                f"Long-term innovation partnership on {rng.choice(SECTOR_DISEASES[sector])}",
            )
        )
        self._add(
            "project", self._year(2016), rng.choice((2.0, 2.5, 3.0)), "PPP", title, participants
        )

    def _eu_project(self) -> None:
        rng = self.rng
        region = self._regions_weighted()
        sector = self._sector_for(region)
        year = self._year()
        pool = self._active()
        factors = dict(PROJECT_FACTORS, cluster_or_science_park=0.8, patient_organisation=0.8)
        weights = [
            self._affinity(o, sector, factors) * EU_PROGRAMME_WEIGHT.get(o.country, 1.0)
            for o in pool
        ]
        k = rng.choice((5, 6, 7, 7, 8, 8, 9, 10, 11, 12, 13, 15))
        participants = _weighted_sample(rng, pool, weights, k)
        countries = {o.country for o in participants}
        while len(countries) < 3:
            extra = [o for o in pool if o.country not in countries]
            participants += _weighted_sample(
                rng, extra, [self._affinity(o, sector, factors) for o in extra], 1
            )
            countries = {o.country for o in participants}
        big_pharma = any(
            o.kind == "large_company" and {"pharma", "biotech"} & set(o.sectors)
            for o in participants
        )
        if big_pharma and sector in ("pharma", "biotech", "diagnostics") and rng.random() < 0.5:
            programme = "IMI" if year <= 2013 else "IMI2" if year <= 2021 else "IHI"
        else:
            programme = "FP7" if year <= 2013 else "H2020" if year <= 2020 else "HE"
        title = f"{self._acronym(sector)}: {self._project_title(sector, 'Europe')}"
        self._add("project", year, 1.0, programme, title, participants)

    def _interreg_project(self) -> None:
        rng = self.rng
        left, right, prefix, programme = rng.choice(INTERREG)
        regions = (REGION_BY_KEY[left], REGION_BY_KEY[right])
        sector = self._sector_for(regions[0])
        participants: list[Org] = []
        for region in regions:
            pool = self._active(lambda o, region=region: o.region is region)
            participants += _weighted_sample(
                rng,
                pool,
                [self._affinity(o, sector, PROJECT_FACTORS) for o in pool],
                rng.choice((2, 2, 3)),
            )
        title = f"{programme}: {self._project_title(sector, regions[0].region)}"
        self._add("project", self._year(2014), 1.0, prefix, title, participants)

    def _transatlantic_project(self) -> None:
        rng = self.rng
        tim = [r for r in REGIONS if "tim" in r.partnerships]
        sector = rng.choice(("medtech", "diagnostics", "nanohealth", "ehealth"))
        participants: list[Org] = []
        for region in rng.sample(tim, rng.choice((2, 3, 4))):
            pool = self._active(lambda o, region=region: o.region is region)
            participants += _weighted_sample(
                rng,
                pool,
                [self._affinity(o, sector, PROJECT_FACTORS) for o in pool],
                rng.choice((1, 2)),
            )
        title = f"TIM twin project: {self._project_title(sector, 'the twin regions')}"
        self._add("project", self._year(2019), 1.0, "TIM", title, participants)

    def _cross_cluster_partnerships(self) -> None:
        """The cross-cluster partnerships named in the domain reading (AI4Diag, BRIGHT, TIM)."""
        rng = self.rng

        def cluster_orgs(slug: str) -> list[Org]:
            return self._active(
                lambda o: o.kind == "cluster_or_science_park" and slug in o.clusters
            )

        def members(slug: str, kinds: tuple[str, ...], k: int) -> list[Org]:
            pool = self._active(lambda o: slug in o.clusters and o.kind in kinds)
            return _weighted_sample(rng, pool, [o.propensity for o in pool], k)

        self._add(
            "project",
            2018,
            2.0,
            "ESCP",
            "AI4Diag: strategic cluster partnership on artificial intelligence for "
            "diagnostics SMEs",
            cluster_orgs("ai4diag") + members("ai4diag", ("sme",), 4),
        )
        self._add(
            "event_meeting",
            2019,
            0.5,
            "EVT",
            "AI4Diag matchmaking event for diagnostics and AI companies",
            members("ai4diag", ("sme", "research_organisation", "hospital_or_care_provider"), 8),
        )
        self._add(
            "project",
            2021,
            2.0,
            "COSME",
            "BRIGHT: joint service portfolio and staff upskilling for four European health "
            "clusters",
            cluster_orgs("bright") + members("bright", ("sme",), 3),
        )
        self._add(
            "project",
            2021,
            1.5,
            "COSME",
            "MEDIC-NEST: towards a European meta-cluster for health innovation",
            cluster_orgs("medic-nest")
            + members("medic-nest", ("patient_organisation", "funder_or_investor"), 2),
        )
        self._add(
            "event_meeting",
            2024,
            0.5,
            "EVT",
            "MEDIC-NEST and BRIGHT closing conference, Brussels",
            cluster_orgs("bright")
            + cluster_orgs("medic-nest")
            + members("bright", ("sme", "public_body"), 3),
        )
        self._add(
            "membership",
            2019,
            2.0,
            "TIM",
            "TIM: transatlantic twin-cluster partnership in life sciences",
            cluster_orgs("tim") + members("tim", ("public_body",), 2),
        )
        self._add(
            "event_meeting",
            2022,
            0.5,
            "EVT",
            "TIM twin mission to Sherbrooke: nanotech and medtech partnering",
            members("tim", ("sme", "university", "research_organisation"), 7),
        )

    def _publication(self) -> None:
        rng = self.rng
        leads = self._active(
            lambda o: o.kind in ("university", "research_organisation", "hospital_or_care_provider")
        )
        lead = _weighted_choice(rng, leads, [o.propensity for o in leads])
        sector = rng.choice(lead.sectors)
        if rng.random() < 0.65:
            pool = self._active(lambda o: o.region is lead.region and o is not lead)
        else:
            pool = self._active(lambda o: o is not lead)
        k = rng.choice((1, 1, 2, 2, 3))
        coauthors = _weighted_sample(
            rng, pool, [self._affinity(o, sector, PUBLICATION_FACTORS) for o in pool], k
        )
        self._add(
            "publication",
            self._year(),
            rng.choice((1.0, 1.0, 1.0, 0.5)),
            "PUB",
            self._publication_title(sector),
            [lead, *coauthors],
        )

    def _supply(self) -> None:
        rng = self.rng
        suppliers = self._active(
            lambda o: o.kind in COMPANY_KINDS and any(c.product for c in o.offers)
        )
        supplier = _weighted_choice(rng, suppliers, [1.0 + o.propensity for o in suppliers])
        cap = rng.choice([c for c in supplier.offers if c.product])
        customers = self._active(lambda o: o is not supplier and o.kind in cap.sought_by)
        if not customers:
            customers = self._active(
                lambda o: (
                    o is not supplier
                    and o.kind in ("sme", "large_company", "hospital_or_care_provider")
                )
            )
        weights = [
            (1.0 + o.propensity)
            * (
                8.0
                if o.region is supplier.region
                else 2.0
                if o.country == supplier.country
                else 1.0
            )
            * (2.0 if set(o.sectors) & set(cap.sectors) else 1.0)
            for o in customers
        ]
        customer = _weighted_choice(rng, customers, weights)
        title = rng.choice(("Supply agreement", "Framework contract", "Service contract"))
        self._add(
            "supply",
            self._year(),
            rng.choice((1.0, 1.0, 1.5)),
            "SUP",
            f"{title}: {cap.product}",
            [supplier, customer],
        )

    def _network_membership(self) -> None:
        rng = self.rng
        region = self._regions_weighted()
        sector = self._sector_for(region)
        hosts = self._active(lambda o: o.region is region and o.kind == "cluster_or_science_park")
        if not hosts:
            return
        host = hosts[0]
        pool = self._active(lambda o: o.region is region and o is not host)
        factors = {
            "sme": 1.5,
            "large_company": 1.0,
            "hospital_or_care_provider": 0.8,
            "university": 0.6,
            "public_body": 1.0,
            "patient_organisation": 1.0,
            "other": 1.2,
            "research_organisation": 0.6,
            "funder_or_investor": 0.5,
        }
        members = _weighted_sample(
            rng,
            pool,
            [
                (0.5 + o.propensity)
                * (4.0 if sector in o.sectors else 0.4)
                * factors.get(o.kind, 0.5)
                for o in pool
            ],
            rng.choice((3, 4, 5, 6, 8)),
        )
        topic = {
            "ai_and_data": "health data",
            "ehealth": "digital health",
            "digital_therapeutics": "digital health",
            "functional_food": "food and health",
            "business_services": "regulatory affairs",
        }.get(sector, SECTOR_FIELDS[sector])
        self._add(
            "membership",
            self._year(),
            0.5,
            "NET",
            f"{host.name}: {topic} network",
            [host, *members],
        )

    def _event(self) -> None:
        rng = self.rng
        region = self._regions_weighted()
        sector = self._sector_for(region)
        year = self._year()
        hosts = self._active(lambda o: o.region is region and o.kind == "cluster_or_science_park")
        guests_pool = self._active(lambda o: o.region is not region)
        local_pool = self._active(
            lambda o: o.region is region and o.kind != "cluster_or_science_park"
        )
        factors = {
            "sme": 1.5,
            "large_company": 1.0,
            "funder_or_investor": 1.5,
            "cluster_or_science_park": 1.0,
        }
        participants = hosts[:1]
        participants += _weighted_sample(
            rng,
            local_pool,
            [self._affinity(o, sector, factors) for o in local_pool],
            rng.choice((1, 2, 3)),
        )
        participants += _weighted_sample(
            rng,
            guests_pool,
            [self._affinity(o, sector, factors) for o in guests_pool],
            rng.choice((1, 2, 3, 4)),
        )
        title = rng.choice(
            (
                f"{region.city} partnering day {year}: {SECTOR_FIELDS[sector]}",
                f"B2B matchmaking at the {region.city} health innovation week {year}",
                f"Investor and partnering forum {year}, {region.city}",
            )
        )
        self._add("event_meeting", year, 0.5, "EVT", title, participants)

    def _other(self) -> None:
        rng = self.rng
        academics = self._active(lambda o: o.kind in ("university", "research_organisation"))
        owner = _weighted_choice(rng, academics, [o.propensity for o in academics])
        smes = self._active(lambda o: o.kind == "sme" and o.region is owner.region)
        if not smes:
            return
        weights = [3.0 if set(o.sectors) & set(owner.sectors) else 0.5 for o in smes]
        partner = _weighted_choice(rng, smes, weights)
        year = self._year(max(FIRST_YEAR, partner.founded))
        kind, weight = rng.choice((("licence", 1.5), ("spin-off", 2.0), ("infrastructure", 1.0)))
        title = {
            "licence": f"Exclusive licence agreement in {SECTOR_FIELDS[partner.sectors[0]]}",
            "spin-off": "Spin-off creation and founder support agreement",
            "infrastructure": "Shared laboratory infrastructure agreement",
        }[kind]
        self._add("other", year, weight, "AGR", title, [owner, partner])

    def _connect_stragglers(self) -> None:
        """Every active organisation takes part in at least one collaboration."""
        rng = self.rng
        seen = {key for c in self.collaborations for key in c["participants"]}
        for org in self.orgs:
            if not org.is_active or org.key in seen:
                continue
            local = [
                c
                for c in self.collaborations
                if c["kind"] in ("project", "membership")
                and len(c["participants"]) < 12
                and c["reference"].startswith((f"DEMO-{org.region.programme}-", "DEMO-NET-"))
                and any(self._by_key(k).region is org.region for k in c["participants"])
            ]
            if local:
                collaboration = rng.choice(local)
                collaboration["participants"] = sorted([*collaboration["participants"], org.key])
            else:
                partners = self._active(lambda o, org=org: o.region is org.region and o is not org)
                if not partners:
                    partners = self._active(
                        lambda o, org=org: o.country == org.country and o is not org
                    )
                partner = _weighted_choice(rng, partners, [o.propensity for o in partners])
                self._add(
                    "event_meeting",
                    self._year(),
                    0.5,
                    "EVT",
                    f"Partnering meeting in {org.city}",
                    [org, partner],
                )
            seen.add(org.key)

    def _by_key(self, key: str) -> Org:
        return self.orgs[int(key.split("-")[1]) - 1]

    # -- output ---------------------------------------------------------------------------

    def as_json(self) -> dict[str, Any]:
        organisations = []
        for org in self.orgs:
            organisations.append(
                {
                    "key": org.key,
                    "name": org.name,
                    "kind": org.kind,
                    "sectors": org.sectors,
                    "country": org.country,
                    "region": org.region_name,
                    "clusters": org.clusters,
                    "description": org.description,
                    "offers": org.offer_texts,
                    "seeks": org.seek_texts,
                    "keywords": org.keywords,
                    "maturity": org.maturity,
                    "website": org.website,
                    "external_ids": {"demo": org.key},
                }
            )
        return {
            "about": (
                "Fictional demo data for MultiHelix: every organisation, description, capability "
                "and collaboration is invented, and any resemblance to real organisations is "
                "coincidental. Cluster slugs name real cluster initiatives only as regional "
                f"labels. Generated by scripts/make_demo_data.py (seed {self.seed})."
            ),
            "organisations": organisations,
            "collaborations": self.collaborations,
        }


def _check(dataset: dict[str, Any]) -> None:
    """Fail loudly if a generator change breaks the promises the tests rely on."""
    organisations = dataset["organisations"]
    kinds = {o["kind"] for o in organisations}
    sectors = {s for o in organisations for s in o["sectors"]}
    missing = sorted((set(KINDS) - kinds) | (set(SECTORS) - sectors))
    if missing:
        raise RuntimeError(f"demo data misses kinds or sectors: {missing}")
    if any(not 1 <= len(o["sectors"]) <= 3 for o in organisations):
        raise RuntimeError("every organisation needs 1-3 sectors")
    names = [o["name"] for o in organisations]
    if len(names) != len(set(names)):
        raise RuntimeError("demo data has duplicate names")


def build_dataset(seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Build the whole demo data set from one seed."""
    builder = DemoBuilder(seed)
    builder.build_organisations()
    builder.build_collaborations()
    dataset = builder.as_json()
    _check(dataset)
    return dataset


def render(dataset: dict[str, Any]) -> str:
    """Serialise with a fixed layout so the file is byte-stable and diff-friendly."""
    return json.dumps(dataset, ensure_ascii=False, indent=1) + "\n"


def degrees(dataset: dict[str, Any]) -> dict[str, int]:
    """Number of distinct partners of each organisation across all collaborations."""
    partners: dict[str, set[str]] = {o["key"]: set() for o in dataset["organisations"]}
    for collaboration in dataset["collaborations"]:
        for key in collaboration["participants"]:
            partners[key].update(k for k in collaboration["participants"] if k != key)
    return {key: len(value) for key, value in partners.items()}


def summarise(dataset: dict[str, Any]) -> str:
    organisations = dataset["organisations"]
    by_kind = Counter(o["kind"] for o in organisations)
    by_sector = Counter(s for o in organisations for s in o["sectors"])
    by_country = Counter(o["country"] for o in organisations)
    by_collab = Counter(c["kind"] for c in dataset["collaborations"])
    degree = degrees(dataset)
    values = sorted(degree.values())
    active = [v for v in values if v > 0]
    top = sorted(degree.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    names = {o["key"]: o["name"] for o in organisations}
    lines = [
        f"organisations: {len(organisations)}",
        "by kind: " + ", ".join(f"{k}={by_kind[k]}" for k in KINDS),
        "by sector: " + ", ".join(f"{s}={by_sector[s]}" for s in SECTORS),
        "by country: " + ", ".join(f"{c}={n}" for c, n in sorted(by_country.items())),
        f"collaborations: {len(dataset['collaborations'])} ("
        + ", ".join(f"{k}={by_collab[k]}" for k in COLLABORATION_KINDS)
        + ")",
        f"degree: max={values[-1]}, median={statistics.median(values):g}, "
        f"median among connected={statistics.median(active):g}, "
        f"isolated={len(values) - len(active)}",
        "top hubs: " + "; ".join(f"{names[k]} ({d})" for k, d in top),
        "no text: " + str(sum(1 for o in organisations if o["description"] is None)),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Write the demo data set; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--quiet", action="store_true", help="do not print the summary")
    args = parser.parse_args(argv)
    dataset = build_dataset(args.seed)
    text = render(dataset)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(text.encode("utf-8"))
    if not args.quiet:
        print(f"wrote {args.output} ({len(text.encode('utf-8')):,} bytes)")
        print(summarise(dataset))
    return 0


if __name__ == "__main__":
    sys.exit(main())
