"""What a run leaves behind: the run directory (`RunDirectory`) and its plots
(`pinnkit.report.plots`, imported on demand: it loads matplotlib)."""

from .rundir import Progress as Progress
from .rundir import RunDirectory as RunDirectory
from .rundir import RunLog as RunLog
from .rundir import device_description as device_description
from .rundir import run_header as run_header
