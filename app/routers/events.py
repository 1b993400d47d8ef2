"""Placeholder: filled in by the events work."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
