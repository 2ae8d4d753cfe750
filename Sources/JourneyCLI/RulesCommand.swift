import ArgumentParser
import Foundation
import Journey

/// `journey rules check|graph|adopt`.
struct RulesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules",
        abstract: "Validate, draw or adopt a rule set.",
        subcommands: [Check.self, Graph.self, Adopt.self])

    /// `journey rules adopt PATH [--db PATH] [--json]`: validates the file and records it (version,
    /// text, file, time) as the set every caller of the database uses.
    struct Adopt: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "adopt",
            abstract: "Adopt a rule set for every caller of the database: servers, commands and the batch.",
            discussion: """
                Recorded in journey_rules (version, text, file, time). A running service that follows the \
                adopted set switches within its poll interval, without a restart. --rules and $JOURNEY_RULES \
                still override it, for what-ifs.
                """)

        @Argument(help: "The rules file to adopt.") var path: String
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            // The file is checked before the database is opened, so a bad file is reported as such
            // (65) whatever the database; the set in force is not read, so a database whose adopted
            // text this build cannot read can still adopt a new one.
            _ = try Rules.load(path: path)
            let service = try await makeService(database: database, rules: nil, access: .readWrite)
            let adoption = try await service.adoptRules(fromFile: path)
            if output.json {
                try printJSON(adoption)
                return
            }
            let (adopted, replaced) = (adoption.adopted, adoption.replaced)
            let before = replaced.map { "rules \($0.version) (adoption #\($0.id))" } ?? "the bundled default"
            print("Adopted rules \(adopted.version) from \(path) in \(service.location) (adoption #\(adopted.id)); it replaces \(before) for every caller.")
        }
    }

    /// `journey rules check [PATH]`: exit 0 and a summary when valid, 65 and the error otherwise.
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "check", abstract: "Validate a rule set.")

        @Argument(help: "The rules file; the built-in Rules/mundo-tango.yaml when omitted.") var path: String?

        @OptionGroup(title: "Logging") var logging: LoggingOptions

        func run() async throws {
            let rules = try RulesOptions.load(path)
            let declared = rules.edges.filter(\.isDeclared)
            print(
                "\(rules.source): valid, version \(rules.version), \(Format.count(rules.stages.count, "stage")) (\(rules.stages.map(\.id.rawValue).joined(separator: ", "))), \(Format.count(rules.edges.count - declared.count, "next edge")), \(Format.count(declared.count, "declared edge")), \(Format.count(rules.aliases.count, "alias", plural: "aliases"))."
            )
        }
    }

    /// `journey rules graph [PATH] [--format mermaid|dot]`.
    struct Graph: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "graph", abstract: "Draw the stages and edges with their criteria as labels.")

        enum Style: String, ExpressibleByArgument, CaseIterable { case mermaid, dot }

        @Argument(help: "The rules file; the built-in Rules/mundo-tango.yaml when omitted.") var path: String?
        @Option(help: "mermaid or dot (Graphviz).") var format: Style = .mermaid

        @OptionGroup(title: "Logging") var logging: LoggingOptions

        func run() async throws {
            let rules = try RulesOptions.load(path)
            print(format == .mermaid ? RuleGraph.mermaid(rules) : RuleGraph.dot(rules))
        }
    }
}

extension RulesOptions {
    /// The file at `path`, else the bundled default (no database: `check` and `graph` read files only).
    static func load(_ path: String?) throws -> RuleSet {
        if let path { return try Rules.load(path: path) }
        return try Rules.bundledDefault()
    }
}

/// Drawings of a rule set.
enum RuleGraph {
    static func label(_ edge: Edge) -> String {
        let clauses = edge.requirement.clauses.map { clause -> String in
            switch clause {
            case .criterion(let criterion): criterion.description
            case .anyOf(let criteria): "any of (" + criteria.map(\.description).joined(separator: " | ") + ")"
            }
        }
        let prefix = edge.kind == .next ? "" : "\(edge.kind.rawValue): "
        return prefix + (clauses.isEmpty ? "always" : clauses.joined(separator: "\n"))
    }

    static func mermaid(_ rules: RuleSet) -> String {
        var lines = ["flowchart LR"]
        for stage in rules.stages {
            lines.append("    \(stage.id)[\"\(escape(stage.id.rawValue))<br/>\(escape(stage.title))\"]")
        }
        for edge in rules.edges {
            let arrow = edge.isDeclared ? "-.->" : "-->"
            lines.append("    \(edge.from) \(arrow)|\"\(escape(label(edge)).replacingOccurrences(of: "\n", with: "<br/>"))\"| \(edge.to)")
        }
        return lines.joined(separator: "\n")
    }

    static func dot(_ rules: RuleSet) -> String {
        var lines = ["digraph journey {", "    rankdir=LR;", "    node [shape=box];"]
        for stage in rules.stages {
            lines.append("    \(stage.id) [label=\"\(escape(stage.id.rawValue))\\n\(escape(stage.title))\"];")
        }
        for edge in rules.edges {
            let style = edge.isDeclared ? ", style=dashed" : ""
            lines.append("    \(edge.from) -> \(edge.to) [label=\"\(escape(label(edge)).replacingOccurrences(of: "\n", with: "\\n"))\"\(style)];")
        }
        lines.append("}")
        return lines.joined(separator: "\n")
    }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "\"", with: "'")
    }
}
