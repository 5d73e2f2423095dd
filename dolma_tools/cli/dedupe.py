from dolma_tools.cli.stage import not_implemented

command = not_implemented("dedupe", "issue 9")
