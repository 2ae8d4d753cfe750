public import Foundation
import JourneyCore
import JourneyRules
import JourneyStorage

/// Which rule set a caller decides with, in SPEC §5's order of precedence.
public enum RulesChoice: Sendable, Hashable {
    /// A file the caller named (`--rules`, `$JOURNEY_RULES`): fixed for the caller's life.
    case file(String)
    /// The set adopted in the database (`journey rules adopt`), else the bundled default; a
    /// running ``JourneyService`` follows later adoptions.
    case adopted

    /// `explicit` (a `--rules` value) if given, else `$JOURNEY_RULES` if set and not empty, else ``adopted``.
    public static func resolve(explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> RulesChoice {
        if let explicit { return .file(explicit) }
        if let variable = environment["JOURNEY_RULES"], !variable.isEmpty { return .file(variable) }
        return .adopted
    }
}

/// The rule sets the service can start from.
public enum Rules {
    /// The default rule set, `Rules/mundo-tango.yaml`, compiled into the binary: no file to find,
    /// and no YAML to parse (the build loaded and validated it; see `BundledRules/defaultRules`).
    ///
    /// - throws: nothing any more: a build whose default file is invalid fails. (Kept throwing for
    ///   the callers written when it parsed the text.)
    public static func bundledDefault() throws(JourneyError) -> RuleSet {
        BundledRules.defaultRules
    }

    /// Reads and validates the rule file at `path`.
    ///
    /// - throws: ``JourneyError/rules(_:)`` (`RulesError/unreadable(path:reason:)` or `RulesError/invalid(source:line:place:problem:)`) naming the place.
    public static func load(path: String, displayedAs name: String? = nil) throws(JourneyError) -> RuleSet {
        try read(path: path, displayedAs: name).rules
    }

    /// Reads and validates the rule file at `path`, returning its text too (what `journey rules adopt` records).
    ///
    /// - throws: ``JourneyError/rules(_:)`` (`RulesError/unreadable(path:reason:)` or `RulesError/invalid(source:line:place:problem:)`) naming the place.
    public static func read(path: String, displayedAs name: String? = nil) throws(JourneyError) -> (rules: RuleSet, text: String) {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            let exists = FileManager.default.fileExists(atPath: path)
            throw .rules(.unreadable(path: path, reason: exists ? "it is not a readable file" : "no such file"))
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw .rules(.invalid(source: name ?? path, line: nil, place: "file", problem: "not UTF-8 text"))
        }
        do {
            return (try RuleSetLoader.load(yaml: text, source: name ?? path), text)
        } catch {
            throw .rules(error)
        }
    }

    /// The rule set `choice` names: the file's, or the adopted set (nil when none was adopted:
    /// then the bundled default).
    ///
    /// - throws: ``JourneyError/rules(_:)`` for a malformed file or adopted text, naming it and the
    ///   place; ``JourneyError/store(_:)``.
    public static func load(_ choice: RulesChoice, from store: any JourneyStore) async throws(JourneyError) -> (RuleSet, AdoptedRules?) {
        switch choice {
        case .file(let path):
            return (try load(path: path), nil)
        case .adopted:
            guard let adopted = try await storeCall({ () async throws(StorageError) in try await store.adoptedRules() }) else {
                return (try bundledDefault(), nil)
            }
            do {
                return (
                    try RuleSetLoader.load(yaml: adopted.text, source: "the rules adopted in \(store.location) (#\(adopted.id), from \(adopted.source))"),
                    adopted
                )
            } catch {
                throw .rules(error)
            }
        }
    }
}
