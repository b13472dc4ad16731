"""The sample plan (pure functions): grid parsing, distractor schedules, per-sample slots, V-RULER tasks."""

from vniahd.plan.coverage import DistractorCoverage, check_distractor_coverage, distractor_coverage
from vniahd.plan.grid import depth_label, parse_depths, parse_lengths, parse_values
from vniahd.plan.period import PERIOD_HELP, Period, parse_period
from vniahd.plan.planner import (
    COLUMNS,
    DRAWS,
    Sample,
    derive_seed,
    distractor_image_name,
    needle_image_name,
    needle_position,
    plan_samples,
    sample_id,
    window_offsets,
)
from vniahd.plan.schedules import SCHEDULES, Schedule, get_schedule, insert_slots
from vniahd.plan.tasks import TASKS, TaskTrial, plan_task, released_grid, video_frames

__all__ = [
    "COLUMNS",
    "DRAWS",
    "PERIOD_HELP",
    "DistractorCoverage",
    "Period",
    "SCHEDULES",
    "Sample",
    "Schedule",
    "TASKS",
    "TaskTrial",
    "check_distractor_coverage",
    "depth_label",
    "derive_seed",
    "distractor_coverage",
    "distractor_image_name",
    "get_schedule",
    "insert_slots",
    "needle_image_name",
    "needle_position",
    "parse_depths",
    "parse_lengths",
    "parse_period",
    "parse_values",
    "plan_samples",
    "plan_task",
    "released_grid",
    "sample_id",
    "video_frames",
    "window_offsets",
]
