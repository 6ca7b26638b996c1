import java.util.List;
import java.util.Set;
import java.util.function.Consumer;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;

import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.QueryResult;
import de.bwaldvogel.mongo.backend.memory.MemoryCollection;
import de.bwaldvogel.mongo.bson.BsonRegularExpression;
import de.bwaldvogel.mongo.bson.Document;

/**
 * The memory backend's collection (one lock per collection: every write is atomic) with two
 * additions: queries are served from an index where one fits, and every change is written to the
 * journal inside the collection's lock.
 *
 * Query plans, in order: an {@code _id} equality or {@code $in} (whatever else the filter says,
 * e.g. the versioned save {@code {_id, version}}), then equality, {@code $in} or a range on a field
 * with an {@link OrderedIndex} (served in index order when the sort asks for that field), else
 * the library's own plan (a full scan unless the filter is exactly {@code {_id}}). The query
 * matcher then checks every candidate against the whole filter, so a plan only narrows.
 */
final class EscrowCollection extends MemoryCollection {

    private static final Set<String> RANGE_OPERATORS = Set.of("$gt", "$gte", "$lt", "$lte", "$ne", "$eq", "$in");

    private final EscrowDatabase database;
    private final boolean journaled;

    EscrowCollection(EscrowDatabase database, String name, CollectionOptions options, CursorRegistry cursors) {
        super(database, name, options, cursors);
        this.database = database;
        this.journaled = !name.startsWith("system.") && options.getIdField() != null;
    }

    // ------------------------------------------------------------------ queries

    /** A narrowed set of candidate positions; {@code ordered} when they come in the sort's order. */
    private record Plan(Stream<Integer> positions, boolean ordered) {
    }

    @Override
    protected QueryResult queryDocuments(Document query, Document orderBy, int skip, int limit, int batchSize,
                                         Document fieldSelector) {
        Plan plan = plan(query, orderBy);
        if (plan == null) {
            return super.queryDocuments(query, orderBy, skip, limit, batchSize, fieldSelector);
        }
        Stream<Document> candidates = plan.positions().distinct().map(this::getDocument);
        return matchDocumentsFromStream(candidates, query, plan.ordered() ? null : orderBy, skip, limit,
            batchSize, fieldSelector);
    }

    @Override
    protected boolean documentMatchesQuery(Document document, Document query) {
        database.backend().countExamined();
        return super.documentMatchesQuery(document, query);
    }

    private Plan plan(Document query, Document orderBy) {
        if (query == null || query.isEmpty()) {
            return null;
        }
        Object id = query.get("_id");
        if (id != null && !(id instanceof Document && !isEqualityOrIn((Document) id)) && isIndexable(id)) {
            Index<Integer> idIndex = idIndex();
            if (idIndex != null) {
                Document idQuery = new Document("_id", unwrapEq(id));
                return new Plan(stream(idIndex.getPositions(idQuery)), false);
            }
        }
        String sortKey = singleSortKey(orderBy);
        Plan best = null;
        for (Index<Integer> index : getIndexes()) {
            if (!(index instanceof OrderedIndex ordered) || !query.containsKey(ordered.key())) {
                continue;
            }
            boolean sortsBy = ordered.key().equals(sortKey);
            boolean descending = sortsBy && isDescending(orderBy);
            Object condition = query.get(ordered.key());
            Plan plan;
            if (!(condition instanceof Document operators)) {
                plan = isIndexable(condition) ? new Plan(ordered.equal(OrderedIndex.normalize(condition)), sortsBy) : null;
            } else if (isEqualityOrIn(operators) && operators.containsKey("$eq")) {
                plan = new Plan(ordered.equal(OrderedIndex.normalize(operators.get("$eq"))), sortsBy);
            } else if (isEqualityOrIn(operators)) {
                plan = new Plan(inValues(ordered, (List<?>) operators.get("$in")), false);
            } else {
                plan = range(ordered, operators, descending, sortsBy);
            }
            if (plan != null && (best == null || plan.ordered())) {
                best = plan;
            }
        }
        return best;
    }

    private static Stream<Integer> stream(Iterable<Integer> positions) {
        return StreamSupport.stream(positions.spliterator(), false);
    }

    private static Stream<Integer> inValues(OrderedIndex index, List<?> values) {
        return values.stream().map(OrderedIndex::normalize).distinct().flatMap(index::equal);
    }

    /** A range plan for {$gt/$gte/$lt/$lte, $ne: null}, or null if the operators need a scan. */
    private static Plan range(OrderedIndex index, Document operators, boolean descending, boolean sortsBy) {
        if (!RANGE_OPERATORS.containsAll(operators.keySet()) || operators.containsKey("$eq")
            || operators.containsKey("$in")) {
            return null;
        }
        if (operators.containsKey("$ne") && operators.get("$ne") != null) {
            return null;  // only "$ne: null" narrows a range
        }
        Object low = null;
        Object high = null;
        boolean lowInclusive = false;
        boolean highInclusive = false;
        for (String operator : operators.keySet()) {
            Object bound = operators.get(operator);
            if (operator.equals("$ne")) {
                continue;
            }
            if (bound == null || bound instanceof Document || bound instanceof List || !isIndexable(bound)) {
                return null;
            }
            Object value = OrderedIndex.normalize(bound);
            switch (operator) {
                case "$gt", "$gte" -> {
                    if (low != null) {
                        return null;
                    }
                    low = value;
                    lowInclusive = operator.equals("$gte");
                }
                default -> {
                    if (high != null) {
                        return null;
                    }
                    high = value;
                    highInclusive = operator.equals("$lte");
                }
            }
        }
        return new Plan(index.range(low, lowInclusive, high, highInclusive, descending), sortsBy);
    }

    private static boolean isEqualityOrIn(Document operators) {
        return operators.size() == 1
            && (operators.containsKey("$in") && operators.get("$in") instanceof List
                || operators.containsKey("$eq") && isIndexable(operators.get("$eq")));
    }

    private static Object unwrapEq(Object condition) {
        if (condition instanceof Document operators && operators.containsKey("$eq")) {
            return operators.get("$eq");
        }
        return condition;
    }

    /** A value an index lookup can serve: not a regex, not an array (array equality scans). */
    private static boolean isIndexable(Object value) {
        return !(value instanceof List) && !(value instanceof BsonRegularExpression)
            && !(value instanceof java.util.regex.Pattern)
            && !(value instanceof Document d && BsonRegularExpression.isRegularExpression(d));
    }

    private static String singleSortKey(Document orderBy) {
        if (orderBy == null || orderBy.size() != 1) {
            return null;
        }
        String key = orderBy.keySet().iterator().next();
        return key.startsWith("$") ? null : key;
    }

    private static boolean isDescending(Document orderBy) {
        Object direction = orderBy.values().iterator().next();
        return direction instanceof Number n && n.doubleValue() < 0;
    }

    private Index<Integer> idIndex() {
        for (Index<Integer> index : getIndexes()) {
            if (index.isUnique() && index.getKeys().size() == 1 && index.getKeys().get(0).getKey().equals("_id")) {
                return index;
            }
        }
        return null;
    }

    // ------------------------------------------------------------------ journal

    @Override
    protected Integer addDocumentInternal(Document document) {
        Integer position = super.addDocumentInternal(document);
        if (journaled) {
            database.journal(Journal.put(getFullName(), document));
        }
        return position;
    }

    @Override
    protected void handleUpdate(Integer position, Document oldDocument, Document newDocument) {
        super.handleUpdate(position, oldDocument, newDocument);
        if (journaled) {
            database.journal(Journal.put(getFullName(), newDocument));
        }
    }

    @Override
    protected void removeDocument(Integer position) {
        Object id = getDocument(position).get("_id");
        super.removeDocument(position);
        if (journaled) {
            database.journal(Journal.delete(getFullName(), id));
        }
    }

    /** Every document as a journal record, taken under the collection's lock (a consistent copy). */
    synchronized void snapshot(Consumer<Document> out) {
        streamAllDocumentsWithPosition().forEach(d -> out.accept(Journal.put(getFullName(), d.getDocument())));
    }
}
