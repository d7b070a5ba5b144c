"""Condition phase: edit words, the direction Δc and the three text embeddings."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from zerocon.direction import EditDirection
from zerocon.direction.edit_direction import check_direction_encoder
from zerocon.editing.edit_scope import edit_scope
from zerocon.editing.latent_checks import EMBEDDING_LIMIT, check_in_range
from zerocon.editing.words import derive_edit_words, single_words, swap_words

if TYPE_CHECKING:
    from zerocon.editing.editor import Editor, EditPlan
    from zerocon.editing.state import ImageState


def _notice_truncation(editor: Editor, state: ImageState, label: str, text: str | None) -> None:
    if not text:
        return
    limit = int(editor.tokenizer.model_max_length)
    # One token past the limit is enough to know (and keeps the tokenizer's own warning away).
    count = len(editor.tokenizer(text, truncation=True, max_length=limit + 1).input_ids)
    if count > limit:
        message = (
            f"image {state.index}: the {label} is longer than the text encoder's {limit} tokens; "
            f"it reads the first {limit} and the rest is cut off"
        )
        state.notices.append(message)
        warnings.warn(message, UserWarning, stacklevel=2)


def condition_phase(editor: Editor, state: ImageState, plan: EditPlan) -> None:
    """Fill ``pairs``, ``target_prompt``, ``scope``, ``direction``, ``cond``, ``target_cond``, ``uncond``.

    The direction comes from, in this order: a given direction; given word pairs; the words
    that differ between the caption and the target prompt. Methods that invert use
    ``c + scale·Δc`` (with ``edit_condition="prompt-difference"``, Δc = E(target) − E(caption);
    with ``"target"``, E(target) itself); SDEdit encodes the target prompt directly when there
    is one. With ``blend_scope="auto"`` the edit's [`EditScope`][zerocon.editing.EditScope] is read
    from its words, and a scene edit takes ``scene_negative_prompt`` and
    ``scene_direction_scale``.

    Raises:
        ValueError: when no direction can be built for the words.
    """
    assert state.caption is not None
    request, settings = state.request, plan.settings
    caption, target_prompt = state.caption, request.target_prompt
    pairs: list[tuple[str, str]] = []
    direction = request.direction
    if direction is not None:
        if direction.source_word and direction.target_word:
            pairs = [(direction.source_word, direction.target_word)]
    elif request.word_pairs is not None:
        pairs = list(request.word_pairs)
    else:
        assert target_prompt is not None
        pairs = derive_edit_words(caption, target_prompt)
        state.notices.append(f"edit words derived from the caption: {pairs}")
    if target_prompt is None and pairs:
        target_prompt = swap_words(caption, pairs)
    scope = None
    if settings.blend.scope == "auto" and pairs:
        scope = edit_scope(caption, pairs, target_prompt, settings.scene.words)
        state.notices.append(f"edit scope: {scope.kind} (blend words {list(scope.blend_words)})")
    scene = scope is not None and scope.kind == "scene"
    scale = settings.scene.direction_scale if scene and settings.scene.direction_scale is not None else settings.direction.scale
    cond = editor.encode_text([caption])
    condition = settings.direction.condition if request.direction is None and target_prompt else "direction"
    if condition == "target" or (not plan.method.invert and target_prompt is not None):
        assert target_prompt is not None
        target_cond = editor.encode_text([target_prompt])
    else:
        if condition == "prompt-difference":
            assert target_prompt is not None
            direction = EditDirection.from_sentences(editor.text_encoder, editor.tokenizer, [caption], [target_prompt])
        elif direction is None:
            if single_words(pairs) or (request.word_pairs is not None and pairs):
                try:
                    direction = editor.directions.build(pairs, editor.sentence_source)
                except ValueError:
                    # Phrases the sentence source has no sentences for: the prompts still say it.
                    if single_words(pairs) or target_prompt is None:
                        raise
            if direction is None:
                if target_prompt is None:
                    raise ValueError(f"no direction for the words {pairs}: none of them is in the caption {caption!r}")
                state.notices.append(
                    "the edit is not a word-for-word swap: direction = E(target) - E(caption)"
                )
                direction = EditDirection.from_sentences(
                    editor.text_encoder, editor.tokenizer, [caption], [target_prompt]
                )
        if request.direction is not None:  # a given direction must come from this model's encoders
            check_direction_encoder(direction.encoder_name, editor.text_encoder)
        target_cond = direction.apply_to(cond, scale)
    cause = "the edit direction (its file, or direction_scale)" if direction is not None else "the target prompt"
    check_in_range(target_cond, EMBEDDING_LIMIT, "the edit's conditioning c + Δc", cause, [state.index])
    # The default negative prompt is the caption itself: reuse its encoding.
    negative = settings.scene.negative_prompt if scene else settings.negative_prompt
    for label, text in (("caption", caption), ("target prompt", target_prompt), ("negative prompt", negative)):
        _notice_truncation(editor, state, label, text)
    state.uncond = cond if negative is None else editor.encode_text([negative])
    state.pairs, state.target_prompt, state.direction, state.scope = pairs, target_prompt, direction, scope
    state.cond, state.target_cond = cond, target_cond
