import Foundation
import VAECore

// The command-line tool: parses the words, dispatches to a command, turns every error into a message
// and an exit status (1 for user errors), never a stack trace.
setvbuf(stdout, nil, _IOLBF, 0)

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message.hasSuffix("\n") ? message : message + "\n").utf8))
    exit(1)
}

let words = CommandLine.arguments.dropFirst()
guard let command = words.first else { print(Help.overview); exit(0) }
let rest = words.dropFirst()

do {
    switch command {
    case "--help", "-h", "help":
        if let topic = rest.first {
            guard let text = Help.commands[topic] else { throw UsageError("no command '\(topic)'; see 'vaec --help'") }
            print(text)
        } else {
            print(Help.overview)
        }
    case "--version":
        print("vaec \(VAECVersion.current)")
    case "compile":
        try CompileCommand.run(rest)
    case "run":
        try RunCommand.run(rest)
    case "grad":
        try GradCommand.run(rest)
    case "check":
        try CheckCommand.run(rest)
    case "schedule":
        try ScheduleCommand.run(rest)
    case "bench":
        try BenchCommand.run(rest)
    case "eval":
        try EvalCommand.run(rest)
    case "sweep":
        try SweepCommand.run(rest)
    case "report":
        try ReportCommand.run(rest)
    case "export":
        try ExportCommand.run(rest)
    case "import":
        try ImportCommand.run(rest)
    default:
        throw UsageError("unknown command '\(command)'; see 'vaec --help'")
    }
} catch let failure as CompileFailure {
    fail(failure.formatted())
} catch let error as UsageError {
    fail("error: \(error.description)")
} catch {
    fail("error: \(error)")
}
