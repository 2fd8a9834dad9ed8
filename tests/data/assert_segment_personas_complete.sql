-- Every k from 2 to 20 (any k the vars allow) has one persona for each rank 1..k and no
-- other, rank 1 is always the Insiders, and no two ranks of the same k share a name (a
-- dashboard that shows names must tell the segments apart).
with

personas as (

    select * from {{ ref('segment_personas') }}

),

expected as (

    select
        ks.k,
        ranks.segment_rank
    from range(2, 21) as ks (k)
    inner join range(1, 21) as ranks (segment_rank)
        on ks.k >= ranks.segment_rank

),

compared as (

    select
        coalesce(expected.k, personas.k) as k,
        coalesce(expected.segment_rank, personas.rank) as segment_rank,
        personas.segment_name,
        case
            when personas.k is null then 'missing'
            when expected.k is null then 'unexpected'
            when personas.rank = 1 and personas.segment_name != 'Insiders'
                then 'rank 1 not Insiders'
        end as problem
    from expected
    full outer join personas
        on expected.k = personas.k and expected.segment_rank = personas.rank

),

duplicate_names as (

    select
        k,
        min(rank) as segment_rank,
        segment_name,
        'name used by ' || count(*) || ' ranks of this k' as problem
    from personas
    group by k, segment_name
    having count(*) > 1

)

select * from compared
where problem is not null
union all
select * from duplicate_names
