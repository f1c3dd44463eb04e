import VAECore

/// `vaec --help` and `vaec help COMMAND`.
enum Help {
    static let overview = """
    vaec — a static autodiff-graph compiler for VAE losses

    USAGE: vaec <command> [options]

    COMMANDS:
      compile   Check a .vae model file and write its compiled program (.vaek)
      run       Train a model (.vae or .vaek) and write a checkpoint
      help      Show help for a command

    Run 'vaec help <command>' for a command's options.
    """

    static let commands: [String: String] = [
        "compile": """
        USAGE: vaec compile MODEL.vae [-o PROGRAM.vaek] [--dump STAGE] [--dump-after PASS]

        Parses and checks MODEL.vae, differentiates its loss, optimises the graph and writes the
        compiled program (default: MODEL.vaek beside the model). Prints the effective β of the objective
        and warnings about known traps. Mistakes are reported as file:line:column with the source line
        and a caret; the exit status is then 1.

        OPTIONS:
          -o PATH            where to write the compiled program
          --dump STAGE       print a stage instead of only compiling: ast, ir (the checked forward graph),
                             grad (with the gradient, before optimisation), opt (after all passes)
          --dump-after PASS  print the graph after a pass: \(passList)
        """,
        "run": """
        USAGE: vaec run MODEL.vae|PROGRAM.vaek [--epochs N] [--threads N] [--out DIR]

        Trains the model with the recipe of its train block: one line per epoch with train and test
        −ELBO, reconstruction and KL (nats per example), β and time. At the end it writes the parameters
        as a safetensors checkpoint in PyTorch's layout (DIR/checkpoint.safetensors).

        OPTIONS:
          --epochs N     train N epochs instead of the model file's
          --threads N    worker threads for the kernels (default 2)
          --out DIR      where to write the checkpoint (default runs/<model name>)
        """,
        "help": """
        USAGE: vaec help [COMMAND]
        """,
    ]

    static var passList: String { Compiler.passes.map(\.name).joined(separator: ", ") }
}
