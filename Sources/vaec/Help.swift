import VAECore

/// `vaec --help` and `vaec help COMMAND`.
enum Help {
    static let overview = """
    vaec — a static autodiff-graph compiler for VAE losses

    USAGE: vaec <command> [options]

    COMMANDS:
      compile   Check a .vae model file and write its compiled program (.vaek)
      run       Train a model (.vae or .vaek) and write a checkpoint
      grad      Evaluate the gradient on data: norms, every value's statistics, or a safetensors file
      check     Check the compiled gradient against finite differences
      schedule  Print β for every step of a model's run (and plot it as SVG)
      bench     Time the training step: ms/step, GFLOP/s, compile time, peak memory
      eval      Measure a trained model: −ELBO, rate, distortion, active units, the IWAE bound
      report    Write the HTML report of a run: curves, pictures, numbers, the model
      sweep     Train at several β and draw the rate–distortion curve
      export    Write the model as a PyTorch or JAX module (loss, checkpoints, training step)
      import    Turn parameters trained elsewhere (safetensors) into a vaec checkpoint
      help      Show help for a command

    Run 'vaec help <command>' for a command's options.
    """

    static let commands: [String: String] = [
        "compile": """
        USAGE: vaec compile MODEL.vae [-o PROGRAM.vaek] [--dump STAGE] [--dump-after PASS] [--dot FILE [--depth N]]

        Parses and checks MODEL.vae, differentiates its loss, optimises the graph and writes the
        compiled program (default: MODEL.vaek beside the model). Prints the effective β of the objective
        and warnings about known traps. Mistakes are reported as file:line:column with the source line
        and a caret; the exit status is then 1.

        OPTIONS:
          -o PATH            where to write the compiled program
          --dump STAGE       print a stage instead of only compiling: ast, ir (the checked forward graph),
                             grad (with the gradient, before optimisation), opt (after all passes),
                             kernels (the fused kernels of the training step and their register programs)
          --dump-after PASS  print the graph after a pass: \(passList)
          --dot FILE         write the optimised graph as Graphviz DOT (render: dot -Tsvg FILE -o graph.svg);
                             forward ops green, gradient ops salmon, parameters boxes, inputs houses;
                             each fused kernel (one pass over memory) is a cluster
          --depth N          with --dot: only the ops within N hops of an output
        """,
        "run": """
        USAGE: vaec run MODEL.vae|PROGRAM.vaek [--epochs N] [--threads N] [--out DIR]
                        [--checkpoint-every N] [--resume [DIR]] [--report DIR | --no-report] [--iw K]

        Trains the model with the recipe of its train block: one line per epoch with train and test
        −ELBO, reconstruction and KL (nats per example), β and time. It writes the parameters as a
        safetensors checkpoint in PyTorch's layout (DIR/checkpoint.safetensors) after every epoch and at
        the end, with what a resumed run needs beside it (DIR/training-state.safetensors).

        Ctrl-C finishes the current step, writes the checkpoint, says where it is and exits with status
        130; a second Ctrl-C exits at once. If the loss or a gradient becomes NaN or infinite, training
        stops with status 1, names the op and the source line where the first such value appeared, and
        keeps the last good checkpoint.

        OPTIONS:
          --epochs N            train N epochs instead of the model file's
          --threads N           worker threads for the kernels (default 2)
          --out DIR             where to write the checkpoint (default runs/<model name>, or the
                                --resume folder)
          --checkpoint-every N  write the checkpoint every N steps instead of every epoch
          --resume [DIR]        continue the run whose checkpoint is in DIR (default: the --out folder),
                                bit for bit as if it had not stopped
          --report DIR          where to write the HTML report (default DIR/report beside the checkpoint)
          --no-report           do not write the report
          --iw K                add the importance-weighted bound with K samples to the report
        """,
        "bench": """
        USAGE: vaec bench MODEL.vae|PROGRAM.vaek [--batch N] [--threads N] [--steps N] [--warmup N] [--stages]

        Times the training step as 'vaec run' takes it (gather a batch, draw the noise, forward and
        backward through the kernel program, Adam) and prints the median step time as N.NN ms/step, the
        FLOPs of a step (2·m·n·k per matrix product, one per element and elementwise op, 10 per parameter
        for Adam), the GFLOP/s achieved, the compile time (file → kernel program), the peak memory
        (maximum resident set) and the time share of each kind of kernel (gemm, elementwise, update, data;
        a fused kernel run as a product's epilogue counts with the product). As in 'vaec run', the next
        batch is gathered and its noise drawn during the update when no shuffle comes between the two
        steps: that work counts in 'update', and 'data' is only the part that is not overlapped.
        Uses the model's training data when it can be read, else uniform random values. Build with
        -c release for meaningful numbers.

        OPTIONS:
          --batch N     batch size (default: the model's)
          --threads N   worker threads (default 2)
          --steps N     timed steps (default 300), after --warmup N untimed ones (default 30)
          --stages      also print the time of every stage of the kernel program
        """,
        "schedule": """
        USAGE: vaec schedule MODEL.vae [--svg FILE] [--every N] [--examples N]

        Prints β (or, for capacity annealing, the capacity C) at every training step of the run that the
        model's train block describes, so a schedule can be seen before training, and writes it as an
        SVG plot (default MODEL.schedule.svg). Controllers (GECO, PI control) set β from the losses as
        they train and have no schedule to print.

        OPTIONS:
          --svg FILE      where to write the plot
          --every N       print every Nth step (the plot has all)
          --examples N    the number of training examples, when the data file is not at hand
        """,
        "grad": """
        USAGE: vaec grad MODEL.vae|PROGRAM.vaek [--checkpoint C] [--data D] [--scale X] [--rows A:B]
                         [--noise zero|SEED|FILE.npy] [--values] [--out G.safetensors]

        Evaluates the compiled loss and gradient on rows of a data set and prints the loss and a table
        of gradient norms per parameter. With --values it prints every evaluated IR line with the min,
        max, mean and the counts of NaN and Inf of its value, and marks the first line where a NaN or an
        Inf appears, naming the source line it came from.

        OPTIONS:
          --checkpoint C   parameters from a checkpoint (default: the model's initialisation)
          --data D         an IDX, NPY or CSV file (default: the model's training data); the model's own
                           data files are read with their train-block scale, others unscaled
          --scale X        multiply the data by X
          --rows A:B       rows A to B−1 of the data (default: the first training batch)
          --noise zero|N   ε = 0 so z = μ (comparable with another framework exactly), or the seed of ε
                           (default: the model's training seed), or FILE.npy: ε itself, [rows, latents]
          --values         print every value's statistics instead of the norm table
          --out G          write the gradients as safetensors under the parameters' names
        """,
        "check": """
        USAGE: vaec check MODEL.vae|PROGRAM.vaek [--checkpoint C] [--data D] [--scale X] [--rows A:B] [--noise zero|SEED]
                          [--directions N] [--step H] [--tolerance T]

        Checks the compiled gradient against central finite differences of the loss, as JAX's
        check_grads: in N random unit directions v over all parameters, and in one random direction
        within each parameter tensor, ⟨∇L, v⟩ must match (L(θ+hv) − L(θ−hv))/2h with the noise ε held
        fixed. Prints a line per direction and exits 0 if all agree, else 1 naming the parameter whose
        gradient disagrees most.

        OPTIONS:
          --checkpoint C   parameters from a checkpoint (default: the model's initialisation)
          --data D         a data file (default: the first batch of the training data; random data in
                           [0, 1] when that file is missing)
          --scale X        multiply the data by X (as for vaec grad)
          --rows A:B       rows A to B−1 of the data (default: the first training batch)
          --noise zero|N   as for vaec grad
          --directions N   random directions over all parameters (default 3)
          --step H         h relative to the norm of the parameters moved (default 0.01)
          --tolerance T    allowed relative difference (default 0.02)
        """,
        "eval": """
        USAGE: vaec eval MODEL.vae|PROGRAM.vaek --checkpoint C [--data D] [--scale X] [--iw K] [--json]
                         [--threads N] [--seed S]

        Evaluates trained parameters on a data set (default: the model's test set, else its training
        set), in nats per example: −ELBO = reconstruction (distortion) + KL (rate), the KL of each latent
        dimension, the active units (dimensions whose posterior mean varies over the data:
        Cov_x E_q[z_j] > 0.01, Burda et al.) and, with --iw K, the importance-weighted bound
        L_K = E log (1/K) Σ_k p(x, z_k)/q(z_k|x) (Burda et al.), which lies between the ELBO and log p(x).

        With --json it prints one JSON object with the keys elbo, reconstruction, kl, kl_per_dim,
        active_units, iw_bound, iw_samples and examples. elbo and iw_bound are log-likelihood bounds
        (higher is better, iw_bound ≥ elbo); reconstruction and kl are the positive terms of −ELBO.
        iw_bound is null without --iw.

        OPTIONS:
          --checkpoint C   the trained parameters (a checkpoint.safetensors of vaec run)
          --data D         an IDX, NPY or CSV file; the model's own data files are read with their
                           train-block scale, others unscaled
          --scale X        multiply the data by X
          --iw K           samples per example of the importance-weighted bound (default 0: skip)
          --json           print the figures as one JSON object
          --threads N      worker threads for the kernels (default 2)
          --seed S         seed of the posterior samples (default: the model's training seed)
        """,
        "report": """
        USAGE: vaec report [MODEL.vae|PROGRAM.vaek] --checkpoint C [--out DIR] [--data D] [--scale X] [--iw K]
                           [--threads N] [--seed S]

        Writes the report of a finished run: DIR/index.html (default: report/ beside the checkpoint)
        with the final numbers, the effective weighting, the training curves (SVG; from the training
        state beside the checkpoint), reconstructions beside their inputs, samples from the prior,
        latent traversals (±3σ around an example's posterior mean), for a 2-D latent the decoded grid
        and the data's posterior means coloured by label (from an IDX labels file beside the data), the
        KL per dimension and the model file. It opens from disk; nothing is fetched. Without MODEL, the
        compiled copy an earlier report saved (report/model.vaek) is used.

        OPTIONS:
          --checkpoint C   the run's checkpoint.safetensors
          --out DIR        where to write the report
          --data D         the data to evaluate and picture (default: the test set)
          --scale X        multiply the data by X
          --iw K           samples of the importance-weighted bound (default 100; 0 skips it)
          --threads N      worker threads (default 2)
          --seed S         seed of the posterior samples and of the prior samples pictured
        """,
        "export": """
        USAGE: vaec export MODEL.vae|PROGRAM.vaek --to pytorch|jax [-o FILE.py]

        Writes the model as a readable Python module for PyTorch (an nn.Module) or JAX (a parameter
        pytree and pure functions): the encoder and decoder under the model file's names and with its
        comments, parameters keyed by vaec's checkpoint names, the likelihood, KL, reductions and β
        schedule exactly as vaec compiles them (float32, term for term), load_vaec_checkpoint and
        save_vaec_checkpoint (vaec's safetensors format, no extra package), loss_and_grads, train_step
        and a training loop with the model file's recipe ('python FILE.py'). scripts/export/ has the
        equivalence check against 'vaec grad' and a DistributedDataParallel trainer.

        OPTIONS:
          --to TARGET   pytorch or jax
          -o FILE       where to write the module (default MODEL_TARGET.py in the current folder)
        """,
        "import": """
        USAGE: vaec import CHECKPOINT.safetensors --model MODEL.vae|PROGRAM.vaek -o OUT.safetensors [--step N] [--epoch N]

        Checks parameters trained elsewhere (a safetensors file written by an exported module, or by
        PyTorch from a state_dict under vaec's names) against the model, every name and shape, and writes
        them as a vaec checkpoint for 'vaec eval', 'vaec report' and 'vaec grad'. A 'module.' prefix
        (DistributedDataParallel) or '_orig_mod.' prefix (torch.compile) on every name is removed. A
        file that is already a vaec checkpoint has its checksum verified first.

        OPTIONS:
          --model MODEL   the model the parameters belong to
          -o OUT          where to write the vaec checkpoint
          --step N        the training step to record (default: the file's metadata, else 0)
          --epoch N       the epoch to record (default: the file's metadata, else 0)
        """,
        "sweep": """
        USAGE: vaec sweep MODEL.vae|PROGRAM.vaek --beta B1,B2,… [--epochs N] [--out DIR] [--jobs J] [--threads T]
                          [--iw K]

        Trains the model once per β, each with the constant β in place of the model's β or schedule
        (from the same initialisation and seed), evaluates each on the test set, and writes
        DIR/sweep.csv (β, effective β, rate = KL, distortion = reconstruction, −ELBO, active units),
        DIR/rate-distortion.svg (distortion against rate, Alemi et al. 2018) and DIR/index.html, with
        each β's checkpoint and report in DIR/beta-<β>/. GECO and capacity objectives have no single β
        and are refused.

        OPTIONS:
          --beta LIST     comma-separated β values, e.g. 0.1,0.3,1,3,10
          --epochs N      epochs per training (default: the model file's)
          --out DIR       where to write (default runs/<model name>-sweep)
          --jobs J        trainings run at the same time (default 2: one per core)
          --threads T     kernel threads per training (default 1)
          --iw K          also compute each β's importance-weighted bound with K samples (default 0)
        """,
        "help": """
        USAGE: vaec help [COMMAND]
        """,
    ]

    static var passList: String { Compiler.passNames.joined(separator: ", ") }
}
