namespace MiniVmm.Migration.Control;

/// <summary>
/// Where a part of the VM outside the migration code (the guest harness coupling, say) notes
/// what it did during an outgoing migration, such as a harness PAUSE or RUN and how long the
/// reply took. A note lands in the running migration's <see cref="MigrationTimeline"/> as a
/// <see cref="MigrationTimelineEventKind.Activity"/> event; with no migration running it is dropped.
/// </summary>
public interface IMigrationActivityNotes
{
    /// <summary>Notes an activity at the present time. Any thread, any lock.</summary>
    /// <param name="name">What happened, short (<c>harness PAUSE</c>).</param>
    /// <param name="detail">More about it (how long it took, what it answered), or null.</param>
    void Note(string name, string? detail = null);
}
