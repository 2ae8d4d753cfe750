import Foundation
import Yams

/// Reads a rule set from YAML text and validates it (see the README's "Rule files").
///
/// ```swift
/// let rules = try RuleSetLoader.load(yaml: text, source: "Rules/mundo-tango.yaml")
/// ```
public enum RuleSetLoader {
    /// Parses and validates `yaml`.
    ///
    /// - parameter source: the file name to put in error messages.
    /// - throws: ``RulesError/invalid(source:line:place:problem:)`` naming the place and what is wrong.
    public static func load(yaml: String, source: String) throws(RulesError) -> RuleSet {
        var reader = Reader(source: source)
        return try reader.read(yaml)
    }
}

/// The keys each mapping of a rule file may hold; anything else is a typo worth reporting.
private enum Keys {
    static let top: Set<String> = ["version", "stages", "edges", "aliases", "cache_ttl_seconds"]
    static let stage: Set<String> = ["id", "title", "description", "criteria", "enter_from_previous"]
    static let edge: Set<String> = ["from", "to", "kind", "reason", "criteria"]
}

private struct Reader {
    let source: String

    init(source: String) { self.source = source }

    func fail(_ node: Node?, _ place: String, _ problem: String) -> RulesError {
        .invalid(source: source, line: node?.mark?.line, place: place, problem: problem)
    }

    mutating func read(_ yaml: String) throws(RulesError) -> RuleSet {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw Self.yamlFailure(error, source: source)
        } catch {
            throw fail(nil, "YAML", "\(error)")
        }
        guard let root, case .mapping(let top) = root else {
            throw fail(root, "top level", "expected a mapping with 'version' and 'stages'")
        }
        try checkKeys(top, allowed: Keys.top, place: "top level")
        let version = try text(top, "version", place: "top level", required: true)!
        let cacheTTL = try ttl(top)
        let stages = try readStages(top)
        let aliases = try readAliases(top, stages: stages)
        let declared = try readEdges(top, stages: stages)
        let implicit = stages.dropFirst().filter(\.entersFromPrevious).map { stage in
            (
                edge: Edge(
                    from: stages[stage.position - 1].id, to: stage.id, kind: .next,
                    reason: "graduated to \(stage.id)", requirement: stage.graduation, isDeclared: false),
                line: stageNode(top, stage.position)?.mark?.line
            )
        }
        let edges = (declared + implicit).map(\.edge)
        try checkReachable(stages: stages, edges: edges, top: top)
        try checkNoOscillation(edges: edges, lines: (declared + implicit).map(\.line), declaredCount: declared.count)
        return RuleSet(version: version, source: source, stages: stages, edges: edges, aliases: aliases, cacheTTL: cacheTTL)
    }

    static func yamlFailure(_ error: YamlError, source: String) -> RulesError {
        switch error {
        case let .scanner(_, problem, mark, _), let .parser(_, problem, mark, _), let .composer(_, problem, mark, _):
            return .invalid(source: source, line: mark.line, place: "YAML", problem: "not valid YAML (\(problem), column \(mark.column))")
        case let .reader(problem, offset, _, _):
            return .invalid(source: source, line: nil, place: "YAML", problem: "not readable text (\(problem) at byte \(offset ?? 0))")
        case let .duplicatedKeysInMapping(duplicates, context):
            return .invalid(source: source, line: context.mark.line, place: "YAML", problem: "duplicate keys \(duplicates.joined(separator: ", "))")
        default:
            return .invalid(source: source, line: nil, place: "YAML", problem: "not valid YAML (\(error))")
        }
    }

    // MARK: Stages

    func readStages(_ top: Node.Mapping) throws(RulesError) -> [Stage] {
        guard let node = top["stages"] else { throw fail(nil, "top level", "no 'stages' list") }
        guard case .sequence(let items) = node else { throw fail(node, "stages", "expected a list of stages") }
        guard !items.isEmpty else { throw fail(node, "stages", "the list is empty; a rule set needs at least two stages") }
        guard items.count >= 2 else { throw fail(node, "stages", "only one stage; a rule set needs at least two") }
        var stages: [Stage] = []
        var seen: Set<StageID> = []
        for (position, item) in items.enumerated() {
            let place = "stage \(position + 1)"
            guard case .mapping(let map) = item else { throw fail(item, place, "expected a mapping with 'id', 'title' and 'criteria'") }
            try checkKeys(map, allowed: Keys.stage, place: place)
            let id = StageID(try text(map, "id", place: place, required: true)!)
            let stagePlace = "stage \(id)"
            guard seen.insert(id).inserted else { throw fail(map["id"], stagePlace, "duplicate stage id") }
            let prefix = "J\(position + 1)_"
            guard id.rawValue.hasPrefix(prefix), id.rawValue.count > prefix.count else {
                throw fail(map["id"], stagePlace, "stage \(position + 1) must have an id starting with '\(prefix)' (ids are in journey order)")
            }
            let title = try text(map, "title", place: stagePlace, required: true)!
            let summary = try text(map, "description", place: stagePlace, required: false) ?? ""
            let requirement = try readRequirement(map["criteria"], place: stagePlace)
            if position == 0, !requirement.clauses.isEmpty {
                throw fail(map["criteria"], stagePlace, "the first stage is where every user starts; it takes no criteria")
            }
            let entersFromPrevious = try flag(map, "enter_from_previous", place: stagePlace) ?? true
            stages.append(
                Stage(
                    id: id, position: position, title: title, summary: summary,
                    graduation: requirement, entersFromPrevious: entersFromPrevious))
        }
        return stages
    }

    func readRequirement(_ node: Node?, place: String) throws(RulesError) -> Requirement {
        guard let node else { return Requirement([]) }
        guard case .sequence(let items) = node else {
            throw fail(node, place, "'criteria' must be a list such as [posts >= 1, connections >= 1]")
        }
        var clauses: [Clause] = []
        for item in items {
            switch item {
            case .scalar:
                clauses.append(.criterion(try criterion(item, place: place)))
            case .mapping(let map):
                guard map.count == 1, let group = map["any"] else {
                    throw fail(item, place, "a criterion is a text such as 'posts >= 1', or 'any:' with a list of them")
                }
                guard case .sequence(let members) = group, !members.isEmpty else {
                    throw fail(group, place, "'any:' takes a non-empty list of criteria")
                }
                var criteria: [Criterion] = []
                for member in members {
                    guard case .scalar = member else {
                        throw fail(member, place, "an 'any:' group holds criteria, not further groups")
                    }
                    criteria.append(try criterion(member, place: place))
                }
                clauses.append(.anyOf(criteria))
            default:
                throw fail(item, place, "a criterion is a text such as 'posts >= 1'")
            }
        }
        return Requirement(clauses)
    }

    func criterion(_ node: Node, place: String) throws(RulesError) -> Criterion {
        let raw = node.scalar?.string ?? ""
        switch CriterionParser.parse(raw) {
        case .success(let criterion): return criterion
        case .failure(let problem): throw fail(node, "\(place), criterion '\(raw)'", problem.message)
        }
    }

    // MARK: Edges

    /// The declared edges, `from: any` expanded, each with the line of its declaration.
    func readEdges(_ top: Node.Mapping, stages: [Stage]) throws(RulesError) -> [(edge: Edge, line: Int?)] {
        guard let node = top["edges"] else { return [] }
        guard case .sequence(let items) = node else { throw fail(node, "edges", "expected a list of edges") }
        let byID = Dictionary(uniqueKeysWithValues: stages.map { ($0.id, $0) })
        var edges: [(edge: Edge, line: Int?)] = []
        for (index, item) in items.enumerated() {
            var place = "edge \(index + 1)"
            guard case .mapping(let map) = item else { throw fail(item, place, "expected a mapping with 'from', 'to', 'kind' and 'reason'") }
            try checkKeys(map, allowed: Keys.edge, place: place)
            let fromText = try text(map, "from", place: place, required: true)!
            let toText = try text(map, "to", place: place, required: true)!
            place = "edge \(fromText) → \(toText)"
            guard let target = byID[StageID(toText)] else {
                throw fail(map["to"], place, "'\(toText)' is not a stage of this rule set")
            }
            let kindText = try text(map, "kind", place: place, required: false)
            let declaredKind: EdgeKind?
            if let kindText {
                guard let kind = EdgeKind(rawValue: kindText), kind != .next else {
                    throw fail(map["kind"], place, "'kind' is 'skip' or 'backward', not '\(kindText)'")
                }
                declaredKind = kind
            } else {
                declaredKind = nil
            }
            let reason = try text(map, "reason", place: place, required: false) ?? ""
            let requirement = map["criteria"] == nil ? target.graduation : try readRequirement(map["criteria"], place: place)
            let origins: [Stage]
            if fromText == "any" {
                guard let declaredKind else {
                    throw fail(map["from"], place, "'from: any' needs 'kind: skip' (every earlier stage) or 'kind: backward' (every later stage)")
                }
                origins = declaredKind == .skip ? Array(stages[..<target.position]) : Array(stages[(target.position + 1)...])
                guard !origins.isEmpty else {
                    throw fail(map["from"], place, "no stage lies \(declaredKind == .skip ? "before" : "after") \(target.id), so 'from: any' makes no edge")
                }
            } else {
                guard let origin = byID[StageID(fromText)] else {
                    throw fail(map["from"], place, "'\(fromText)' is not a stage of this rule set")
                }
                origins = [origin]
            }
            for origin in origins {
                let actual = kind(from: origin.position, to: target.position)
                guard let actual else { throw fail(item, place, "an edge must lead to another stage") }
                if actual == .next, let declaredKind, fromText != "any" {
                    throw fail(map["kind"], place, "declared 'kind: \(declaredKind.rawValue)' but the edge goes to the next stage; leave 'kind' out")
                }
                if actual != .next {
                    guard let declaredKind else {
                        let what = actual == .skip ? "skips \(skipped(stages, origin.position, target.position))" : "goes back"
                        throw fail(item, place, "the edge \(what) but is not declared with 'kind: \(actual.rawValue)'")
                    }
                    guard declaredKind == actual else {
                        throw fail(map["kind"], place, "declared 'kind: \(declaredKind.rawValue)' but the edge is a \(actual.rawValue)")
                    }
                    guard !reason.isEmpty else {
                        throw fail(item, place, "a \(actual.rawValue) edge needs a 'reason'")
                    }
                }
                edges.append(
                    (
                        Edge(
                            from: origin.id, to: target.id, kind: actual,
                            reason: reason.isEmpty ? "graduated to \(target.id)" : reason,
                            requirement: requirement, isDeclared: true), item.mark?.line
                    ))
            }
        }
        return edges
    }

    func kind(from: Int, to: Int) -> EdgeKind? {
        if to == from + 1 { return .next }
        if to > from + 1 { return .skip }
        if to < from { return .backward }
        return nil
    }

    func skipped(_ stages: [Stage], _ from: Int, _ to: Int) -> String {
        stages[(from + 1)..<to].map(\.id.rawValue).joined(separator: ", ")
    }

    func checkReachable(stages: [Stage], edges: [Edge], top: Node.Mapping) throws(RulesError) {
        var reached: Set<StageID> = [stages[0].id]
        var frontier = [stages[0].id]
        while let stage = frontier.popLast() {
            for edge in edges where edge.from == stage && reached.insert(edge.to).inserted {
                frontier.append(edge.to)
            }
        }
        if let lost = stages.first(where: { !reached.contains($0.id) }) {
            throw fail(stageNode(top, lost.position), "stage \(lost.id)", "no edge can reach this stage from \(stages[0].id)")
        }
    }

    /// The node of the stage at `position` under `stages:`.
    func stageNode(_ top: Node.Mapping, _ position: Int) -> Node? {
        guard case .sequence(let items)? = top["stages"], items.indices.contains(position) else { return nil }
        return items[position]
    }

    /// Refuses a cycle of edges whose criteria can all hold at once (see ``OscillationCheck``).
    ///
    /// The error carries the line of the cycle's backward edge and names every edge with its line.
    func checkNoOscillation(edges: [Edge], lines: [Int?], declaredCount: Int) throws(RulesError) {
        let cycle: OscillationCheck.Cycle
        switch OscillationCheck.check(edges) {
        case .none:
            return
        case .cycle(let found):
            cycle = found
        case .tooComplex(let index):
            let edge = edges[index]
            throw RulesError.invalid(
                source: source, line: lines[index], place: "edge \(edge.from) → \(edge.to)",
                problem: "the ways back from this backward edge are too many to check for cycles "
                    + "(more than \(OscillationCheck.stateBudget) combinations of stages and criteria); declare fewer or simpler edges")
        }
        let steps = cycle.edges.map { index in
            let edge = edges[index]
            let origin = index < declaredCount ? "declared" : "criteria of \(edge.to)"
            return "\(edge.from) → \(edge.to) (\(origin)\(lines[index].map { ", line \($0)" } ?? ""))"
        }
        let first = edges[cycle.edges[0]]
        let values = cycle.witness.isEmpty ? "any metrics" : cycle.witness.joined(separator: ", ")
        throw RulesError.invalid(
            source: source, line: lines[cycle.edges[0]],
            place: "edges " + ([first.from] + cycle.edges.map { edges[$0].to }).map(\.rawValue).joined(separator: " → "),
            problem: "a user with \(values) would leave \(first.from) and come back on unchanged metrics, "
                + "one move per evaluation: \(steps.joined(separator: ", ")); make the criteria of the backward edge "
                + "exclude those of the way back (a minimum stay with days_in_stage does not: it restarts on every move)")
    }

    // MARK: Aliases and scalars

    func readAliases(_ top: Node.Mapping, stages: [Stage]) throws(RulesError) -> [String: StageID] {
        guard let node = top["aliases"] else { return [:] }
        guard case .mapping(let map) = node else { throw fail(node, "aliases", "expected a mapping such as 'J1: J1_NEW_USER'") }
        let ids = Set(stages.map(\.id))
        var aliases: [String: StageID] = [:]
        for (key, value) in map {
            guard let legacy = key.scalar?.string, let target = value.scalar?.string else {
                throw fail(key, "aliases", "each alias maps a text to a stage id")
            }
            guard ids.contains(StageID(target)) else {
                throw fail(value, "alias \(legacy)", "'\(target)' is not a stage of this rule set")
            }
            guard !ids.contains(StageID(legacy)) else {
                throw fail(key, "alias \(legacy)", "'\(legacy)' is already a stage id")
            }
            aliases[legacy] = StageID(target)
        }
        return aliases
    }

    func ttl(_ top: Node.Mapping) throws(RulesError) -> TimeInterval? {
        guard let node = top["cache_ttl_seconds"] else { return nil }
        guard let seconds = node.scalar.flatMap({ Double($0.string) }), seconds > 0, seconds.isFinite else {
            throw fail(node, "cache_ttl_seconds", "expected a positive number of seconds")
        }
        return seconds
    }

    func text(_ map: Node.Mapping, _ key: String, place: String, required: Bool) throws(RulesError) -> String? {
        guard let node = map[key] else {
            if required { throw fail(.mapping(map), place, "'\(key)' is missing") }
            return nil
        }
        guard let scalar = node.scalar, !scalar.string.trimmingWhitespace().isEmpty else {
            throw fail(node, place, "'\(key)' must be a non-empty text")
        }
        return scalar.string
    }

    func flag(_ map: Node.Mapping, _ key: String, place: String) throws(RulesError) -> Bool? {
        guard let node = map[key] else { return nil }
        guard let value = node.scalar.flatMap({ Bool.construct(from: $0) }) else {
            throw fail(node, place, "'\(key)' must be true or false")
        }
        return value
    }

    func checkKeys(_ map: Node.Mapping, allowed: Set<String>, place: String) throws(RulesError) {
        for key in map.keys {
            guard let name = key.scalar?.string, allowed.contains(name) else {
                let name = key.scalar?.string ?? "a non-text key"
                throw fail(key, place, "unknown key '\(name)' (allowed: \(allowed.sorted().joined(separator: ", ")))")
            }
        }
    }
}
