using Beemesh.Overlay.Records;

namespace Beemesh.Overlay;

/// <summary>
/// Plumtree (Leitão, Pereira, Rodrigues, SRDS 2007) over the active view, plus the digest exchange
/// (anti-entropy) on every new link and periodically, and the record rules: signature, route
/// signer, version order, expiry.
/// </summary>
public sealed partial class OverlayNode
{
    /// <summary>GRAFTs sent for one missing record before it is left to the digest exchange.</summary>
    private const int MaxGrafts = 8;

    /// <summary>Most record ids a keepalive re-announces (see <see cref="RecentIds"/>).</summary>
    private const int MaxReannounced = 64;

    /// <summary>Most origins whose upstream tree neighbour is remembered (see <see cref="_upstream"/>); past it the map starts over.</summary>
    private const int MaxUpstreamOrigins = 4096;

    private List<MissingRecord>? _missing;
    private List<(RecordId Id, long At)>? _recentRecords;
    private long _lazyFlushAt = long.MaxValue;

    /// <summary>
    /// Per origin, the neighbour whose tree push (GOSSIP, not a repair) brought this node the
    /// origin's latest record: the upstream side of that origin's tree (Plumtree's trees are per
    /// origin). See <see cref="OnGossip"/>.
    /// </summary>
    private Dictionary<ulong, ulong>? _upstream;

    /// <summary>Signs, stores and broadcasts a new version of <paramref name="content"/>.</summary>
    public OverlayRecord Publish(RecordContent content, long now)
    {
        ArgumentNullException.ThrowIfNull(content);
        _now = now;
        if (System.Text.Encoding.UTF8.GetByteCount(content.Key) > OverlayRecord.MaxKeyLength || content.Payload.Length > OverlayRecord.MaxPayloadLength)
        {
            throw new ArgumentException($"record key or payload too large (key ≤ {OverlayRecord.MaxKeyLength} bytes, payload ≤ {OverlayRecord.MaxPayloadLength} bytes)", nameof(content));
        }

        var version = new RecordVersion(_clock.Now(now), Self.Id);
        long expires = content.Leased ? now + _options.LeaseDuration : 0;
        var record = new OverlayRecord(content.Kind, content.Key, content.Subject ?? Self.Id, version, expires, false, content.Payload);
        record = record.WithSignature(_signer.Sign(record));
        if (content.Leased)
        {
            _leased ??= [];
            _leased.RemoveAll(r => r.Slot == record.Slot);
            _leased.Add(record);
            _nextLeaseRenewal = Math.Min(_nextLeaseRenewal, now + _options.LeaseRenewInterval);
        }

        StoreAndBroadcast(record, null, now);
        return record;
    }

    /// <summary>Deletes the record in (<paramref name="kind"/>, <paramref name="key"/>): a signed tombstone that expires after <see cref="OverlayOptions.TombstoneLifetime"/>.</summary>
    public OverlayRecord Delete(RecordKind kind, string key, long now)
    {
        _now = now;
        _leased?.RemoveAll(r => r.Kind == kind && r.Key == key);
        var version = new RecordVersion(_clock.Now(now), Self.Id);
        var record = new OverlayRecord(kind, key, Self.Id, version, now + _options.TombstoneLifetime, true, ReadOnlyMemory<byte>.Empty);
        record = record.WithSignature(_signer.Sign(record));
        StoreAndBroadcast(record, null, now);
        return record;
    }

    private void RenewLeases(long now)
    {
        _nextLeaseRenewal = long.MaxValue;
        if (_leased is null || _leased.Count == 0)
        {
            return;
        }

        foreach (OverlayRecord old in _leased.ToArray())
        {
            Publish(new RecordContent(old.Kind, old.Key, old.Payload, Leased: true, Subject: old.Subject), now);
        }
    }

    private void StoreAndBroadcast(OverlayRecord record, ActiveLink? from, long now, ulong? announceOnly = null)
    {
        _store.Put(record);
        (_recentRecords ??= []).Add((record.Id, now));
        _observer?.RecordAccepted(this, record, now);
        // Neighbours that announced this record hold it already: they get neither a copy nor an IHAVE.
        List<PeerAddress>? holders = FindMissing(record.Id)?.Announcers;
        RemoveMissing(record);
        foreach (ActiveLink link in _active)
        {
            if (link == from || (holders is not null && holders.Contains(link.Peer)))
            {
                continue;
            }

            // A tree link gone silent is likely a dead peer: announce instead of pushing, so a live
            // one grafts the record and a dead one costs no payload. A push is announced too: should
            // the copy be lost, the IHAVE tells the neighbour to graft it from us, along the tree
            // (see OverlayOptions.TreeGraftTimeout), rather than from a lazy link it would add to the tree.
            // The origin's upstream neighbour, when the copy came another way, gets the IHAVE alone:
            // see OnGossip.
            if (link.Eager && now - link.LastHeard <= _options.SilenceThreshold && link.Peer.Id != announceOnly)
            {
                Send(link.Peer, OverlayMessage.Gossip(record));
            }

            (link.LazyQueue ??= []).Add(record.Id);
            if (_lazyFlushAt == long.MaxValue)
            {
                _lazyFlushAt = now + _options.LazyFlushInterval;
            }
        }
    }

    /// <summary>Checks a received record; null when it is newer than what we hold and valid.</summary>
    private RecordRefusal? Check(OverlayRecord record, OverlayRecord? held, long now)
    {
        if (record.IsExpired(now))
        {
            return RecordRefusal.Expired;
        }

        if (held is not null && record.Version <= held.Version)
        {
            return RecordRefusal.Replay;
        }

        if (_verifier.Verify(record) is RecordRefusal refusal)
        {
            return refusal;
        }

        if (record.Kind == RecordKind.Route && record.Subject != record.Origin)
        {
            return RecordRefusal.RouteSignerMismatch;
        }

        return null;
    }

    private void OnGossip(PeerAddress from, ActiveLink? link, OverlayMessage message, long now)
    {
        OverlayRecord? record = message.Record;
        if (record is null)
        {
            return;
        }

        OverlayRecord? held = _store.Get(record.Slot);
        if (held is not null && held.Version == record.Version)
        {
            // A duplicate: this link is redundant for the tree.
            _observer?.Duplicate(this, from, record, now);
            if (link is not null && !message.Flag)
            {
                link.Eager = false;
                Send(from, OverlayMessage.Prune);
            }

            return;
        }

        if (Check(record, held, now) is RecordRefusal refusal)
        {
            _observer?.RecordRefused(this, from, record, refusal, now);
            return;
        }

        _clock.Observe(record.Version.Time, now);
        // The neighbour that pushed this origin's last record is upstream in its tree. When this
        // copy came another way (a GRAFT answer, a repair, another tree link), that neighbour's own
        // push is most likely held up on its link (a retransmission): it gets an IHAVE instead of
        // the copy, which would cross its late one (two duplicates). Should it lack the record, the
        // IHAVE on a tree link makes it graft the record from here soon (TreeGraftTimeout).
        ulong? announceOnly = null;
        if (_upstream is not null && _upstream.TryGetValue(record.Origin, out ulong upstream) && upstream != from.Id)
        {
            announceOnly = upstream;
        }

        if (link is not null && !message.Flag)
        {
            link.Eager = true;
            if (_upstream is null || (_upstream.Count >= MaxUpstreamOrigins && !_upstream.ContainsKey(record.Origin)))
            {
                _upstream = new Dictionary<ulong, ulong>();
            }

            _upstream[record.Origin] = from.Id;
        }

        StoreAndBroadcast(record, link, now, announceOnly);
    }

    private void OnIHave(PeerAddress from, RecordId[] ids, long now)
    {
        foreach (RecordId id in ids)
        {
            OverlayRecord? held = _store.Get(id.Slot);
            if (held is not null && held.Version >= id.Version)
            {
                continue;
            }

            MissingRecord? entry = FindMissing(id);
            if (entry is null)
            {
                (_missing ??= []).Add(entry = new MissingRecord(id, from, now + _options.GraftTimeout));
            }
            else if (!entry.Announcers.Contains(from))
            {
                entry.Announcers.Add(from);
            }

            if (entry.Grafts == 0 && Find(from.Id) is { Eager: true })
            {
                // A tree neighbour announced a record whose copy did not come: it was lost on this
                // link. Graft it from that neighbour first, and soon: the tree stays as it is.
                if (entry.Announcers[0] != from)
                {
                    entry.Announcers.Remove(from);
                    entry.Announcers.Insert(0, from);
                }

                entry.Deadline = Math.Min(entry.Deadline, now + _options.TreeGraftTimeout);
            }
        }
    }

    private void RunMissingTimers(long now)
    {
        List<MissingRecord> missing = _missing!;
        for (int i = missing.Count - 1; i >= 0; i--)
        {
            if (i >= missing.Count)
            {
                continue;
            }

            MissingRecord entry = missing[i];
            if (now < entry.Deadline)
            {
                continue;
            }

            OverlayRecord? held = _store.Get(entry.Id.Slot);
            if ((held is not null && held.Version >= entry.Id.Version) || entry.Grafts >= MaxGrafts)
            {
                // Received, or asked often enough: the periodic digest exchange covers the rest.
                missing.RemoveAt(i);
                continue;
            }

            // Announcers are asked in turn, and again from the first when all were asked: on a
            // lossy network the GRAFT or its answer may be what was lost.
            PeerAddress announcer = entry.Announcers[entry.Next % entry.Announcers.Count];
            entry.Next++;
            entry.Grafts++;
            Find(announcer.Id)?.Eager = true;
            Send(announcer, new OverlayMessage(OverlayMessageType.Graft, ids: [entry.Id]));
            entry.Deadline = now + _options.GraftRetryTimeout;
        }
    }

    private void OnGraft(PeerAddress from, ActiveLink? link, RecordId[] ids)
    {
        link?.Eager = true;
        foreach (RecordId id in ids)
        {
            OverlayRecord? held = _store.Get(id.Slot);
            if (held is not null && held.Version >= id.Version)
            {
                Send(from, OverlayMessage.Gossip(held));
            }
        }
    }

    private void OnLinkUp(ActiveLink link, long now)
    {
        // Anti-entropy: tell the new neighbour every version we hold; it sends what we lack and
        // asks (WANT) for what it lacks.
        if (_store.Count > 0)
        {
            Send(link.Peer, new OverlayMessage(OverlayMessageType.Digest, ids: _store.Ids()));
        }
    }

    private void OnDigest(PeerAddress from, RecordId[] theirs)
    {
        Dictionary<RecordSlot, RecordVersion>? index = null;
        if (theirs.Length > 8)
        {
            index = new Dictionary<RecordSlot, RecordVersion>(theirs.Length);
            foreach (RecordId id in theirs)
            {
                index[id.Slot] = id.Version;
            }
        }

        foreach (OverlayRecord mine in _store.Records)
        {
            RecordVersion? their = index is not null
                ? (index.TryGetValue(mine.Slot, out RecordVersion v) ? v : null)
                : FindVersion(theirs, mine.Slot);
            if (their is null || their.Value < mine.Version)
            {
                Send(from, OverlayMessage.Gossip(mine, repair: true));
            }
        }

        List<RecordId>? want = null;
        foreach (RecordId id in theirs)
        {
            OverlayRecord? held = _store.Get(id.Slot);
            if (held is null || held.Version < id.Version)
            {
                (want ??= []).Add(id);
            }
        }

        if (want is not null)
        {
            Send(from, new OverlayMessage(OverlayMessageType.Want, ids: [.. want]));
        }
    }

    private static RecordVersion? FindVersion(RecordId[] ids, RecordSlot slot)
    {
        foreach (RecordId id in ids)
        {
            if (id.Slot == slot)
            {
                return id.Version;
            }
        }

        return null;
    }

    private void OnWant(PeerAddress from, RecordId[] ids)
    {
        foreach (RecordId id in ids)
        {
            OverlayRecord? held = _store.Get(id.Slot);
            if (held is not null && held.Version >= id.Version)
            {
                Send(from, OverlayMessage.Gossip(held, repair: true));
            }
        }
    }

    private void FlushLazy()
    {
        _lazyFlushAt = long.MaxValue;
        foreach (ActiveLink link in _active)
        {
            if (link.LazyQueue is { Count: > 0 } queue)
            {
                Send(link.Peer, new OverlayMessage(OverlayMessageType.IHave, ids: [.. queue]));
                queue.Clear();
            }
        }
    }

    /// <summary>
    /// Ids of the records stored since the last heartbeat (at most <see cref="MaxReannounced"/>), or
    /// null. The heartbeat sends them as IHAVE on every active link in place of a keepalive, so a
    /// neighbour whose eager copy and IHAVEs were all lost still learns of the record a keepalive
    /// interval later and grafts it, rather than wait for the periodic digest exchange.
    /// </summary>
    private RecordId[]? RecentIds(long now)
    {
        if (_recentRecords is null || _recentRecords.Count == 0)
        {
            return null;
        }

        _recentRecords.RemoveAll(r => now - r.At > _options.KeepaliveInterval);
        if (_recentRecords.Count == 0)
        {
            return null;
        }

        int skip = Math.Max(0, _recentRecords.Count - MaxReannounced);
        var ids = new RecordId[_recentRecords.Count - skip];
        for (int i = 0; i < ids.Length; i++)
        {
            ids[i] = _recentRecords[skip + i].Id;
        }

        _recentRecords.Clear();
        return ids;
    }

    private MissingRecord? FindMissing(RecordId id)
    {
        if (_missing is null)
        {
            return null;
        }

        foreach (MissingRecord m in _missing)
        {
            if (m.Id == id)
            {
                return m;
            }
        }

        return null;
    }

    private void RemoveMissing(OverlayRecord record)
    {
        _missing?.RemoveAll(m => m.Id.Slot == record.Slot && m.Id.Version <= record.Version);
    }
}
