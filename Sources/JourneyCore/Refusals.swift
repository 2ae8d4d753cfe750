/// A rule set that cannot be used: a malformed file, or one that cannot be read at all.
///
/// Its `description` is one sentence naming the file (and line) and what is wrong there.
public enum RulesError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The rule set in `source` is malformed at `place` (and `line` where the YAML gives one).
    case invalid(source: String, line: Int?, place: String, problem: String)
    /// The rules file at `path` cannot be read (missing, not a file, not UTF-8 text), with the reason.
    case unreadable(path: String, reason: String)

    /// One sentence naming the file (and line) and the place in it.
    public var description: String {
        switch self {
        case let .invalid(source, line, place, problem):
            let location = line.map { "\(source):\($0)" } ?? source
            return "\(location): \(place): \(problem)."
        case let .unreadable(path, reason):
            return "Cannot read the rules file \(path): \(reason)."
        }
    }
}

/// What the rules refuse about one user: a stored stage they do not know, or a move they forbid.
///
/// Each `description` is one sentence a person can act on, naming the stage or criteria.
public enum TransitionRefusal: Error, Hashable, Sendable, CustomStringConvertible {
    /// A stored stage value that is neither a stage of the rules nor one of their aliases.
    case unknownStage(value: String, rulesSource: String)
    /// A requested target that is not a stage of the rules.
    case unknownTargetStage(value: String, rulesSource: String)
    /// A requested move that would skip stages the rules do not let it skip.
    case skipNotDeclared(from: StageID, to: StageID, skipped: [StageID])
    /// A requested move back to an earlier stage that the rules do not declare.
    case backwardNotDeclared(from: StageID, to: StageID)
    /// A requested move to a stage the rules give no edge to from here (or to the same stage).
    case noEdge(from: StageID, to: StageID)
    /// A requested move on a declared edge whose criteria do not hold.
    case criteriaNotMet(from: StageID, to: StageID, unmet: [CriterionCheck])

    /// One sentence naming the stage or criteria involved, and what to do where there is a fix.
    public var description: String {
        switch self {
        case let .unknownStage(value, rulesSource):
            return
                "The stored stage '\(value.printable)' is not a stage of \(rulesSource) and has no alias there; add an alias under 'aliases:' or fix the row."
        case let .unknownTargetStage(value, rulesSource):
            return "'\(value.printable)' is not a stage of \(rulesSource); ask for one of its stage ids."
        case let .skipNotDeclared(from, to, skipped):
            return "Moving from \(from) to \(to) would skip \(skipped.map(\.rawValue).joined(separator: ", ")); the rules declare no such edge."
        case let .backwardNotDeclared(from, to):
            return "Moving back from \(from) to \(to) is not allowed; the rules declare no backward edge between them."
        case let .noEdge(from, to):
            return from == to ? "The user is already in \(to)." : "The rules declare no edge from \(from) to \(to)."
        case let .criteriaNotMet(from, to, unmet):
            let list = unmet.map(\.summary).joined(separator: ", ")
            return "Moving from \(from) to \(to) needs criteria that do not hold: \(list)."
        }
    }
}

extension String {
    /// The text with control characters escaped (`\n`, `\u{1B}`), so that a value read from a
    /// database or a request cannot split a one-line message or drive the operator's terminal.
    public var printable: String {
        unicodeScalars.map { $0.properties.generalCategory == .control ? $0.escaped(asASCII: true) : String($0) }.joined()
    }
}
