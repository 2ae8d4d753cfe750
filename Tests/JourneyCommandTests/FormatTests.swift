import Foundation
import Testing

@testable import JourneyCLI

/// The human formats of issue 12: durations a person reads, plurals, aligned tables, ISO-8601 timestamps.
@Suite("human formats")
struct FormatTests {
    @Test(
        "durations round to their two largest units",
        arguments: [
            (0.0, "under 1 s"), (0.4, "under 1 s"), (-5, "under 1 s"), (0.6, "1 s"), (45, "45 s"), (59.6, "1 min"),
            (12 * 60 + 10, "12 min"), (3_600, "1 h"), (5 * 3_600 + 20 * 60 + 31, "5 h 20 min"), (86_400, "1 d"),
            (3 * 86_400 + 4 * 3_600 + 59, "3 d 4 h"), (101_107_307.73000002, "1170 d 5 h"), (.infinity, "?"),
        ] as [(Double, String)])
    func duration(seconds: Double, expected: String) {
        #expect(Format.duration(seconds) == expected)
    }

    @Test("a count and its noun agree")
    func plurals() {
        #expect(Format.count(0, "user") == "0 users")
        #expect(Format.count(1, "user") == "1 user")
        #expect(Format.count(2, "next edge") == "2 next edges")
        #expect(Format.count(1, "alias", plural: "aliases") == "1 alias")
        #expect(Format.count(3, "alias", plural: "aliases") == "3 aliases")
    }

    @Test("percentages have one decimal, and an empty whole is 0.0%")
    func percentages() {
        #expect(Format.percent(1, of: 3) == "33.3%")
        #expect(Format.percent(3, of: 3) == "100.0%")
        #expect(Format.percent(0, of: 0) == "0.0%")
    }

    @Test("a table's header sits over its columns; numbers align right; no trailing spaces")
    func table() {
        let lines = Format.table(
            [["Moves per edge", "last 7 d", "all"], ["  J1 → J2", "3", "1204"], ["  J2 → J3", "12", "7"]],
            align: [.left, .right, .right], indent: "> ")
        #expect(
            lines == [
                "> Moves per edge  last 7 d   all",
                ">   J1 → J2              3  1204",
                ">   J2 → J3             12     7",
            ])
        // Each number ends where its header ends
        let headerEnd = lines[0].distance(from: lines[0].startIndex, to: lines[0].range(of: "last 7 d")!.upperBound)
        #expect(lines.dropFirst().allSatisfy { Array($0)[headerEnd - 1].isNumber && Array($0)[headerEnd] == " " })
        #expect(Format.table([["a", ""], ["bb", ""]]) == ["a", "bb"])
    }

    @Test("timestamps are ISO-8601 UTC with Z")
    func timestamps() {
        #expect(Format.timestamp(Date(timeIntervalSince1970: 1_764_306_249)) == "2025-11-28T05:04:09Z")
    }
}
