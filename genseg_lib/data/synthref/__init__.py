"""SynthRef, the embedded default: procedural scenes (`scenes`), referring expressions resolved
against them (`queries`), and splits on disk in the unified sample format (`dataset`)."""

from genseg_lib.data.synthref.dataset import (
    ANNOTATION_FILE,
    FORMAT_VERSION,
    GENERATOR_VERSION,
    SPLITS,
    generate_split,
    load_synthref,
    scene_objects,
    synthref_samples,
    write_synthref,
)
from genseg_lib.data.synthref.queries import (
    COLOUR_PROPERTIES,
    EXTREMES,
    QUERY_TYPES,
    RELATIONS,
    SHAPE_PROPERTIES,
    describe,
    make_queries,
    program_text,
    resolve,
)
from genseg_lib.data.synthref.scenes import (
    COLOURS,
    SHAPES,
    SIZES,
    SceneObject,
    SynthRefConfig,
    render_scene,
    render_shape,
)

__all__ = [
    "ANNOTATION_FILE",
    "COLOURS",
    "COLOUR_PROPERTIES",
    "EXTREMES",
    "FORMAT_VERSION",
    "GENERATOR_VERSION",
    "QUERY_TYPES",
    "RELATIONS",
    "SHAPES",
    "SHAPE_PROPERTIES",
    "SIZES",
    "SPLITS",
    "SceneObject",
    "SynthRefConfig",
    "describe",
    "generate_split",
    "load_synthref",
    "make_queries",
    "program_text",
    "render_scene",
    "render_shape",
    "resolve",
    "scene_objects",
    "synthref_samples",
    "write_synthref",
]
