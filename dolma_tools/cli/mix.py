from dolma_tools.cli.stage import not_implemented

command = not_implemented("mix", "issue 4")
