import Journey
import JourneyCore

let path = try platformDatabase()                                  // Setup.swift: user 42 is ready for J2
let journey = try await JourneyService(path: path)                 // migrates; adopted (else default) rules; a missing file is an error

let answer = try await journey.journey(of: 42)                     // cached for five minutes; writes nothing
print(answer.storedStage, "→", answer.evaluation.stage)           // J1_NEW_USER → J2_ACTIVE_USER
for check in answer.evaluation.next?.checks ?? [] {
    print(check.met ? "✓" : "·", check.summary)                    // · posts 1 / 50
}

let updates = journey.transitionUpdates()                          // subscribe first: a move is announced after its commit
let moved = try await journey.evaluateAndPersist(user: 42)         // records J1→J2 (J2→J3 … one row each)
for await move in updates.prefix(moved.recorded.count) {
    print("moved:", move.userID, move.from, "→", move.to)          // moved: 42 J1_NEW_USER → J2_ACTIVE_USER
}

do {                                                               // an explicit move is validated the same way
    _ = try await journey.requestTransition(user: 42, to: StageID("J4_SUPER_ADMIN"))
} catch {
    print("refused:", error)                                       // refused: User 42: … role user (needs == super-admin).
}
