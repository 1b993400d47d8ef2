"""Consortium suggestions: embed the call, hand the in-memory state to the optimiser off the
event loop, map its domain errors to problems."""

from __future__ import annotations

from typing import Any

import anyio.to_thread

from app.errors import NotFound, Unprocessable
from app.services.context import ServiceContext
from app.services.network import organisation_ref
from matching.catalog import CandidateFilter
from matching.consortium import (
    ConsortiumResult,
    ConsortiumRules,
    ConsortiumSearch,
    RoleRule,
    UnsatisfiableRules,
    suggest_consortia,
)
from matching.ranker import UnknownOrganisation


async def suggest(
    ctx: ServiceContext, body: dict[str, Any], *, tenants: tuple[str, ...] | None
) -> dict[str, Any]:
    """Ranked consortia for ``body`` (a validated ConsortiumRequest as a dict)."""
    rules_in = body["rules"]
    rules = ConsortiumRules(
        min_size=rules_in["min_size"],
        max_size=rules_in["max_size"],
        min_countries=rules_in["min_countries"],
        min_eu_countries=rules_in["min_eu_countries"],
        max_per_country=rules_in["max_per_country"],
        roles=tuple(RoleRule(r["kind"], r["at_least"], r["at_most"]) for r in rules_in["roles"]),
        must_include=tuple(rules_in["must_include"]),
        exclude=tuple(rules_in["exclude"]),
    )
    (vector,) = await ctx.encoder.encode([body["call"]])
    search = ConsortiumSearch(
        call_text=body["call"],
        call_vector=vector,
        rules=rules,
        filter=CandidateFilter(
            sectors=tuple(body["sectors"]),
            countries=tuple(body["countries"]),
            clusters=tuple(body["clusters"]),
        ),
        tenants=tenants,
        alternatives=body["alternatives"],
        min_difference=body["min_difference"],
        pool_size=body["pool_size"],
        time_limit_s=body["time_limit_s"],
        call_weight=body["call_weight"],
    )
    try:
        result = await anyio.to_thread.run_sync(suggest_consortia, ctx.derived.state, search)
    except UnknownOrganisation as exc:
        raise NotFound(f"organisation {exc.args[0]} does not exist") from None
    except UnsatisfiableRules as exc:
        raise Unprocessable(
            f"rule '{exc.rule}' cannot be met: {exc.detail}",
            errors=[
                {
                    "loc": ["body", "rules", exc.rule],
                    "msg": exc.detail,
                    "type": "unsatisfiable_rule",
                }
            ],
        ) from None
    return _result(body["call"], result)


def _result(call: str, result: ConsortiumResult) -> dict[str, Any]:
    consortia = []
    for rank, c in enumerate(result.consortia, start=1):
        consortia.append(
            {
                "rank": rank,
                "score": c.score,
                "mean_fit": round(c.mean_fit, 4),
                "mean_pair_score": round(c.mean_pair_score, 4),
                "proven_optimal": c.proven_optimal,
                "optimality_gap": c.optimality_gap,
                "members": [
                    {
                        "organisation": organisation_ref(m.organisation),
                        "fit": round(m.fit, 4),
                        "mean_pair_score": round(m.mean_pair_score, 4),
                        "required": m.required,
                        "reasons": m.reasons,
                    }
                    for m in c.members
                ],
                "pairs": [
                    {
                        "first": p.first,
                        "second": p.second,
                        "score": round(p.score, 4),
                        "worked_together": p.worked_together,
                        "hop_distance": p.hop_distance,
                        "common_partners": p.common_partners,
                        "reason": p.reason,
                    }
                    for p in c.pairs
                ],
                "rules": [
                    {"rule": r.rule, "satisfied": r.satisfied, "detail": r.detail} for r in c.rules
                ],
                "explanation": c.explanation,
            }
        )
    return {
        "call": call,
        "candidates": result.candidates,
        "pool": result.pool,
        "solve_seconds": round(result.solve_seconds, 3),
        "notes": result.notes,
        "consortia": consortia,
    }
