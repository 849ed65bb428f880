"""The monitoring budget: tokens go where the scene changed and where it sounded (docs/architecture.md,
"The monitoring profile").

Video: each frame keeps its changed cells first, most changed first, up to the preset's per-frame count;
a frame with little change keeps `still_keep` of that count, ranked by STVP; a frame with no frame before
it (a camera's first clip, or after a gap) keeps the full count by STVP. Change comes from the clip's
MediaEvidence (measured on pixels, across chunk and clip boundaries), never from the embeddings.

Audio: every chunk keeps `quiet_audio_keep` of its preset count by VGAS's ranking; tokens whose sound
salience reaches `salient_sound` are then kept, most salient first, until the clip's audio count plus the
video count the frames left unspent is used. A clip never keeps more than the preset's total.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from omnisift_core.budget import kept_count, top_k_sorted
from omnisift_core.config import MonitoringBudget, RemovalRatios
from omnisift_core.errors import InvalidTokens
from omnisift_core.ste import straight_through_mask
from omnisift_core.stvp import VideoSelection, stvp_scores
from omnisift_core.tokens import ClipTokens, MediaEvidence
from omnisift_core.vgas import AudioScorer, AudioSelection, select_audio

CHANGED_RANK = 3.0  # above any STVP score (1 - cos is at most 2): changed cells rank first


def evidence_of(clip: ClipTokens) -> MediaEvidence:
    if clip.evidence is None:
        raise InvalidTokens("the monitoring budget needs the clip's media evidence (cell change, sound salience)")
    return clip.evidence


def change_first_video(clip: ClipTokens, ratio: float, budget: MonitoringBudget) -> VideoSelection:
    """Per frame: changed cells first (up to the preset count), else `still_keep` of it by STVP's ranking.

    The reported score of a changed cell is its change (flagged temporal); the others keep STVP's score.
    """
    frames = clip.frames()  # (F, P, D)
    num_frames, per_frame = frames.shape[:2]
    stvp, stvp_temporal = stvp_scores(frames, clip.frame_chunks())  # (F, P), (F,)
    change = evidence_of(clip).cell_change.view(num_frames, per_frame)
    full = kept_count(per_frame, ratio)
    still = min(full, max(1, math.ceil(full * budget.still_keep)))
    changed = change >= 1.0  # NaN compares False
    keeps = []
    for f in range(num_frames):
        if torch.isnan(change[f]).any():  # nothing before this frame: all of it is new
            keeps.append(top_k_sorted(stvp[f], full) + f * per_frame)
            continue
        count = min(full, max(int(changed[f].sum()), still))
        priority = torch.where(changed[f], CHANGED_RANK + change[f], stvp[f])
        keeps.append(top_k_sorted(priority, count) + f * per_frame)
    keep = torch.cat(keeps) if keeps else torch.zeros(0, dtype=torch.long, device=frames.device)
    temporal = changed | stvp_temporal[:, None]
    return VideoSelection(keep=keep, scores=torch.where(changed, change, stvp).flatten(), temporal=temporal.flatten())


def salience_first_audio(
    clips: Sequence[ClipTokens],
    videos: Sequence[VideoSelection],
    ratios: RemovalRatios,
    budget: MonitoringBudget,
    scorer: AudioScorer,
) -> list[AudioSelection]:
    """Each chunk's VGAS floor, then the clip's salient sound within its audio count plus unspent video count."""
    ranked = select_audio(clips, [v.keep for v in videos], ratios.audio, scorer)  # VGAS scores of every token
    selections = []
    for clip, video, vgas in zip(clips, videos, ranked, strict=True):
        unspent = clip.grid.frames * kept_count(clip.grid.tokens_per_frame, ratios.video) - len(video.keep)
        keep = _salience_first(clip, vgas.scores, ratios.audio, budget, max(0, unspent))
        selections.append(AudioSelection(keep, vgas.scores, straight_through_mask(vgas.scores, keep)))
    return selections


def _salience_first(clip: ClipTokens, vgas: Tensor, ratio: float, budget: MonitoringBudget, unspent: int) -> Tensor:
    salience = evidence_of(clip).sound_salience
    chosen = torch.zeros(len(clip.audio), dtype=torch.bool, device=vgas.device)
    ceiling = unspent
    for chunk in torch.unique(clip.audio.chunks).tolist():
        members = (clip.audio.chunks == chunk).nonzero().flatten()
        count = kept_count(len(members), ratio)
        ceiling += count
        floor = min(count, max(1, math.ceil(count * budget.quiet_audio_keep)))
        chosen[members[top_k_sorted(vgas[members].detach(), floor)]] = True
    room = ceiling - int(chosen.sum())
    candidates = ((salience >= budget.salient_sound) & ~chosen).nonzero().flatten()
    if room > 0 and len(candidates):
        # most salient first; VGAS breaks ties (it is in [0, 1], scaled below the salience's resolution)
        priority = salience[candidates].float() + 1e-3 * vgas[candidates].detach().float()
        chosen[candidates[top_k_sorted(priority, min(room, len(candidates)))]] = True
    return chosen.nonzero().flatten()
