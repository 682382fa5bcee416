namespace Beemesh.Overlay.Records;

/// <summary>
/// The records one node holds, one version per slot. Enumeration follows insertion order (a list
/// beside the index), so digests and repairs come out the same on every run.
/// </summary>
public sealed class RecordStore
{
    private readonly Dictionary<RecordSlot, int> _index = [];
    private readonly List<OverlayRecord> _records = [];

    /// <summary>Number of records held (tombstones included).</summary>
    public int Count => _records.Count;

    /// <summary>The records held, in insertion order.</summary>
    public IReadOnlyList<OverlayRecord> Records => _records;

    /// <summary>The record in <paramref name="slot"/>, or null.</summary>
    public OverlayRecord? Get(RecordSlot slot) => _index.TryGetValue(slot, out int i) ? _records[i] : null;

    /// <summary>Stores <paramref name="record"/>, replacing whatever its slot held.</summary>
    public void Put(OverlayRecord record)
    {
        if (_index.TryGetValue(record.Slot, out int i))
        {
            _records[i] = record;
        }
        else
        {
            _index[record.Slot] = _records.Count;
            _records.Add(record);
        }
    }

    /// <summary>Removes every record expired at <paramref name="now"/> and returns how many.</summary>
    public int RemoveExpired(long now)
    {
        int removed = 0;
        for (int i = _records.Count - 1; i >= 0; i--)
        {
            if (_records[i].IsExpired(now))
            {
                _records.RemoveAt(i);
                removed++;
            }
        }

        if (removed > 0)
        {
            _index.Clear();
            for (int i = 0; i < _records.Count; i++)
            {
                _index[_records[i].Slot] = i;
            }
        }

        return removed;
    }

    /// <summary>The ids of every record held, for a digest.</summary>
    public RecordId[] Ids()
    {
        var ids = new RecordId[_records.Count];
        for (int i = 0; i < ids.Length; i++)
        {
            ids[i] = _records[i].Id;
        }

        return ids;
    }
}
