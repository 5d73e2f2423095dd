from dolma_tools.cli.stage import stage_command
from dolma_tools.taggers.runner import TagConfig, run_tag

command = stage_command(
    "tag", TagConfig, run_tag,
    help="Run taggers over documents and write attribute files mirroring the documents' paths "
         "(documents/... -> attributes/<experiment>/...).")
