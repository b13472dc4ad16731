"""Needle sets: schema, loaders (native, reference, V-RULER task files), prompts, the demo set builders."""

from vniahd.needles.cards import COLOURS, OBJECTS, load_object_photo, render_card, render_objects_card
from vniahd.needles.demo import DEMO_NEEDLES, build_demo_needles, demo_needles_path
from vniahd.needles.images import DEFAULT_BACKGROUND, check_image, check_images, parse_colour, read_rgb
from vniahd.needles.loaders import load_needle_set
from vniahd.needles.prompts import MC_INSTRUCTION, SHORT_INSTRUCTION, parse_options, prompt_text
from vniahd.needles.schema import Needle, NeedleSet, TaskItem, TaskItemSet
from vniahd.needles.vruler import TASK_FILES, load_task_items
from vniahd.needles.vruler_demo import build_vruler_demo, vruler_demo_path

__all__ = [
    "COLOURS",
    "DEFAULT_BACKGROUND",
    "DEMO_NEEDLES",
    "MC_INSTRUCTION",
    "Needle",
    "NeedleSet",
    "OBJECTS",
    "SHORT_INSTRUCTION",
    "TASK_FILES",
    "TaskItem",
    "TaskItemSet",
    "build_demo_needles",
    "build_vruler_demo",
    "check_image",
    "check_images",
    "demo_needles_path",
    "load_needle_set",
    "load_task_items",
    "load_object_photo",
    "parse_colour",
    "parse_options",
    "prompt_text",
    "read_rgb",
    "render_card",
    "render_objects_card",
    "vruler_demo_path",
]
