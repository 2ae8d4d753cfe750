import Foundation
import JourneyCore
import JourneyRules

/// The rule sets the service can start from.
public enum Rules {
    /// The default rule set, `Rules/mundo-tango.yaml`, compiled into the binary: no file to find.
    ///
    /// - throws: ``JourneyError/rules(_:)`` only for a build whose default file is invalid
    ///   (the tests load it, so such a build does not pass them).
    public static func bundledDefault() throws(JourneyError) -> RuleSet {
        do {
            return try RuleSetLoader.load(yaml: BundledRules.defaultYAML, source: BundledRules.defaultName)
        } catch {
            throw .rules(error)
        }
    }

    /// Reads and validates the rule file at `path`.
    ///
    /// - throws: ``JourneyError/rulesUnreadable(path:reason:)`` or ``JourneyError/rules(_:)`` naming the place.
    public static func load(path: String, displayedAs name: String? = nil) throws(JourneyError) -> RuleSet {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            let exists = FileManager.default.fileExists(atPath: path)
            throw .rulesUnreadable(path: path, reason: exists ? "it is not a readable file" : "no such file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw .rules(.invalidRules(source: name ?? path, line: nil, place: "file", problem: "not UTF-8 text"))
        }
        do {
            return try RuleSetLoader.load(yaml: text, source: name ?? path)
        } catch {
            throw .rules(error)
        }
    }
}
