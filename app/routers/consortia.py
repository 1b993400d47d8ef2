"""Placeholder: filled in by the consortia work."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
