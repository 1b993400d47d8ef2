"""Placeholder: filled in by the rerank work."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
